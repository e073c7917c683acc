"""TransformerLens' everyday model API on interp's `Transformer`, with TL's names, shapes and numbers.

`TLModelAPI` is a mixin of `Transformer`. It makes `model.cfg` a real `transformer_lens` config (`TLConfig`,
derived from the model's `ModelConfig`, which stays reachable as `model.cfg.config`), so the model satisfies
`transformer_lens.model_protocol.TransformerLensModelWithWeights` and TL's model-agnostic tools
(`transformer_lens.patching`, `head_detector`, `ActivationCache`, `SVDInterpreter`) run on it unchanged.

Weights follow TL's layout (`[n_layers, n_heads, ...]`). With grouped-query attention, key/value weights and
biases are repeated per query head as TL does (query head h reads key/value head h // group_size), and
families without biases give zeros of TL's shapes, as TL's own models do.
"""

from __future__ import annotations

from typing import Literal

import torch

from interp.errors import InvalidInputError
from interp.model.config import ModelConfig, TLConfig


class TLModelAPI:
    """Mixed into `Transformer` (an `nn.Module` with `blocks`, `embed`, `unembed`, `ln_final`)."""

    # -- the config: TL's view, interp's config behind it -----------------------------------------------------
    @property
    def cfg(self) -> TLConfig:
        return self.__dict__["_tl_cfg"]

    @cfg.setter
    def cfg(self, config: ModelConfig | TLConfig) -> None:
        # a weak reference back to the model lets cfg.device / cfg.dtype follow .to(...)
        self.__dict__["_tl_cfg"] = TLConfig(config, model=self)

    def __setstate__(self, state: dict) -> None:
        """After unpickling or deepcopy, bind the config to this copy (a config travels without its model)."""
        super().__setstate__(state)
        self.cfg = self.cfg

    # -- helpers -----------------------------------------------------------------------------------------
    def _per_query_head(self, w: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """Key/value heads repeated to one per query head along `dim` (a no-op without GQA)."""
        n, h = w.shape[dim], self.cfg.n_heads
        return w if n == h else w.repeat_interleave(h // n, dim=dim)

    def _layers(self, get) -> torch.Tensor:
        return torch.stack([get(block) for block in self.blocks])

    def _zeros(self, *shape: int, like: torch.Tensor) -> torch.Tensor:
        return torch.zeros(shape, dtype=like.dtype, device=like.device)

    def _head_bias(self, attn, which: str) -> torch.Tensor:
        """(n_heads, d_head): attn.b_q / b_k / b_v reshaped per head and repeated per query head."""
        bias = getattr(attn, which)
        d = self.cfg.d_head
        if bias is None:
            return self._zeros(self.cfg.n_heads, d, like=attn.w_q)
        return self._per_query_head(bias.view(-1, d), dim=0)

    # -- biases, TL's shapes ---------------------------------------------------------------------------------
    @property
    def b_Q(self) -> torch.Tensor:  # (n_layers, n_heads, d_head)
        return self._layers(lambda b: self._head_bias(b.attn, "b_q"))

    @property
    def b_K(self) -> torch.Tensor:  # (n_layers, n_heads, d_head), repeated per query head
        return self._layers(lambda b: self._head_bias(b.attn, "b_k"))

    @property
    def b_V(self) -> torch.Tensor:  # (n_layers, n_heads, d_head), repeated per query head
        return self._layers(lambda b: self._head_bias(b.attn, "b_v"))

    @property
    def b_O(self) -> torch.Tensor:  # (n_layers, d_model)
        return self._layers(lambda b: b.attn.b_o if b.attn.b_o is not None
                            else self._zeros(self.cfg.d_model, like=b.attn.w_o))

    @property
    def b_in(self) -> torch.Tensor:  # (n_layers, d_mlp)
        return self._layers(lambda b: b.mlp.b_in if b.mlp.b_in is not None
                            else self._zeros(self.cfg.d_mlp, like=b.mlp.w_in))

    @property
    def b_out(self) -> torch.Tensor:  # (n_layers, d_model)
        return self._layers(lambda b: b.mlp.b_out if b.mlp.b_out is not None
                            else self._zeros(self.cfg.d_model, like=b.mlp.w_out))

    @property
    def b_U(self) -> torch.Tensor:  # (d_vocab,): zeros unless weight processing folded a LayerNorm's bias in
        bias = getattr(self.unembed, "b_U", None)
        return bias if bias is not None else self._zeros(self.cfg.d_vocab, like=self.unembed.weight)

    # -- factored circuits ------------------------------------------------------------------------------------
    @property
    def QK(self):
        """TL's `FactoredMatrix` W_Q W_K^T: (n_layers, n_heads, d_model, d_model), key heads repeated."""
        from transformer_lens import FactoredMatrix

        W_K = self._layers(lambda b: self._per_query_head(b.attn.W_K, dim=0))
        return FactoredMatrix(self.W_Q, W_K.transpose(-2, -1))

    @property
    def OV(self):
        """TL's `FactoredMatrix` W_V W_O: (n_layers, n_heads, d_model, d_model), value heads repeated."""
        from transformer_lens import FactoredMatrix

        W_V = self._layers(lambda b: self._per_query_head(b.attn.W_V, dim=0))
        return FactoredMatrix(W_V, self.W_O)

    def tl_parameters(self) -> dict[str, torch.Tensor]:
        """TL-named weights (`blocks.0.attn.W_V`, `unembed.W_U`, ...), as a TransformerBridge's
        `tl_parameters()`: what `SVDInterpreter` reads. Norm weights are the effective scales."""
        params = {"embed.W_E": self.W_E, "unembed.W_U": self.W_U, "unembed.b_U": self.b_U}
        if self.pos_embed is not None:
            params["pos_embed.W_pos"] = self.pos_embed.W_pos
        names = {"W_Q": "W_Q", "W_K": "W_K", "W_V": "W_V", "W_O": "W_O", "b_Q": "b_Q", "b_K": "b_K",
                 "b_V": "b_V", "b_O": "b_O"}
        stacked = {name: getattr(self, attr) for name, attr in names.items()}
        stacked["W_K"] = self._per_query_head(stacked["W_K"])
        stacked["W_V"] = self._per_query_head(stacked["W_V"])
        mlp = {"W_in": self.W_in, "W_out": self.W_out, "b_in": self.b_in, "b_out": self.b_out}
        if self.cfg.gated_mlp:
            mlp["W_gate"] = self.W_gate
        for layer, block in enumerate(self.blocks):
            params.update({f"blocks.{layer}.attn.{k}": v[layer] for k, v in stacked.items()})
            params.update({f"blocks.{layer}.mlp.{k}": v[layer] for k, v in mlp.items()})
            for norm in ("ln1", "ln2"):
                for leaf in ("w", "b"):
                    value = getattr(getattr(block, norm), leaf, None)
                    if value is not None:
                        params[f"blocks.{layer}.{norm}.{leaf}"] = value
        for leaf in ("w", "b"):
            if getattr(self.ln_final, leaf, None) is not None:
                params[f"ln_final.{leaf}"] = getattr(self.ln_final, leaf)
        return params

    # -- tokens and directions ------------------------------------------------------------------------------
    def tokens_to_residual_directions(self, tokens: str | int | torch.Tensor) -> torch.Tensor:
        """The unembedding column(s) of `tokens`: (d_model,) for one token, else tokens.shape + (d_model,).
        On unprocessed weights the final norm's weight is not in it (TL warns the same)."""
        if isinstance(tokens, torch.Tensor) and tokens.numel() > 1:
            return self.W_U[:, tokens].movedim(0, -1)
        if isinstance(tokens, str):
            token = self.to_single_token(tokens)
        elif isinstance(tokens, int):
            token = tokens
        elif isinstance(tokens, torch.Tensor):
            token = int(tokens.item())
        else:
            raise InvalidInputError(f"Tokens must be a string, an id or a tensor of ids, not {type(tokens).__name__}.")
        return self.W_U[:, token]

    def get_token_position(self, single_token: str | int | torch.Tensor, input: str | torch.Tensor,
                           mode: Literal["first", "last"] = "first", prepend_bos: bool | None = None,
                           padding_side: Literal["left", "right"] | None = None) -> int:
        """Where `single_token` first (or last) occurs in `input` (a text, or ids (pos,) / (1, pos))."""
        if mode not in ("first", "last"):
            raise InvalidInputError(f"mode must be 'first' or 'last', not {mode!r}.")
        if isinstance(input, str):
            kwargs = {} if padding_side is None else {"padding_side": padding_side}
            tokens = self.to_tokens(input, prepend_bos=prepend_bos, **kwargs)
        else:
            tokens = input
        if tokens.dim() == 2:
            if tokens.shape[0] != 1:
                raise InvalidInputError(f"Token ids must be (pos,) or (1, pos), not {tuple(tokens.shape)}.")
            tokens = tokens[0]
        if isinstance(single_token, str):
            single_token = self.to_single_token(single_token)
        elif isinstance(single_token, torch.Tensor):
            single_token = int(single_token.item())
        where = (tokens == single_token).nonzero().flatten()
        if where.numel() == 0:
            raise InvalidInputError(f"Token {single_token} does not occur in the input.")
        return int(where[0 if mode == "first" else -1])

    def accumulated_bias(self, layer: int, mlp_input: bool = False, include_mlp_biases: bool = True) -> torch.Tensor:
        """Sum of the attention and MLP output biases written into the residual stream before `layer`
        (and the attention bias of `layer` itself with mlp_input): (d_model,), zeros for bias-free families."""
        total = self._zeros(self.cfg.d_model, like=self.W_E)
        for block in self.blocks[:layer]:
            if block.attn.b_o is not None:
                total = total + block.attn.b_o.to(total.device)
            if include_mlp_biases and block.mlp.b_out is not None:
                total = total + block.mlp.b_out.to(total.device)
        if mlp_input:
            if layer >= self.cfg.n_layers:
                raise InvalidInputError(f"mlp_input needs a layer below n_layers = {self.cfg.n_layers}.")
            if self.blocks[layer].attn.b_o is not None:
                total = total + self.blocks[layer].attn.b_o.to(total.device)
        return total
