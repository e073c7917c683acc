"""The hooked transformer: embeddings, blocks, final norm, unembedding, with TransformerLens' hooks.

`Transformer` is a `HookedRootModule`, so `run_with_hooks`, `run_with_cache`, `hooks()` and
`reset_hooks()` behave as in TransformerLens. Forward takes tokens (or text) and returns logits
(batch, pos, vocab); `start_at_layer` / `stop_at_layer` run a slice of the stack on a residual stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformer_lens.HookedRootModule import HookedRootModule

from interp.errors import InvalidInputError
from interp.model.components import Block, Embed, PosEmbed, Unembed, make_norm
from interp.model.components.attention import AttentionInputs, LayerCache
from interp.model.components.hook import HookPoint
from interp.model.config import ModelConfig
from interp.model.tl_api import TLModelAPI

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

ReturnType = Literal["logits", "loss", "both", "resid"] | None


class KVCache:
    """Everything generation needs to continue a batch: per-layer keys/values, key positions and mask."""

    def __init__(self, n_layers: int):
        self.layers = [LayerCache() for _ in range(n_layers)]
        self.positions: torch.Tensor | None = None  # (b, k)
        self.mask: torch.Tensor | None = None  # (b, k)

    @property
    def length(self) -> int:
        return 0 if self.positions is None else self.positions.shape[1]

    def extend(self, positions: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.positions = positions if self.positions is None else torch.cat([self.positions, positions], 1)
        self.mask = mask if self.mask is None else torch.cat([self.mask, mask], 1)
        return self.positions, self.mask


class Transformer(TLModelAPI, HookedRootModule):
    def __init__(self, cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase | None = None):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.embed = Embed(cfg)
        self.hook_embed = HookPoint()  # (b, p, d_model), after the sqrt(d_model) scale where there is one
        self.pos_embed = PosEmbed(cfg) if cfg.positional == "learned" else None
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList([Block(cfg, layer) for layer in range(cfg.n_layers)])
        self.ln_final = make_norm(cfg)
        self.unembed = Unembed(cfg, self.embed)
        self.setup()

    # -- weights, TransformerLens-shaped ---------------------------------------------------------------
    @property
    def W_E(self) -> torch.Tensor:
        return self.embed.W_E  # (vocab, d_model)

    @property
    def W_U(self) -> torch.Tensor:
        return self.unembed.W_U  # (d_model, vocab)

    def _stack(self, get) -> torch.Tensor:
        return torch.stack([get(b) for b in self.blocks])

    W_Q = property(lambda self: self._stack(lambda b: b.attn.W_Q))  # (layer, h, d_model, d_head)
    # W_K / W_V: one slice per query head, as TransformerLens' GQA (query head h reads kv head h // group);
    # _W_K / _W_V: one per key/value head, as stored
    W_K = property(lambda self: self._stack(lambda b: b.attn.W_K))  # (layer, h, d_model, d_head)
    W_V = property(lambda self: self._stack(lambda b: b.attn.W_V))  # (layer, h, d_model, d_head)
    _W_K = property(lambda self: self._stack(lambda b: b.attn._W_K))  # (layer, g, d_model, d_head)
    _W_V = property(lambda self: self._stack(lambda b: b.attn._W_V))  # (layer, g, d_model, d_head)
    W_O = property(lambda self: self._stack(lambda b: b.attn.W_O))  # (layer, h, d_head, d_model)
    W_in = property(lambda self: self._stack(lambda b: b.mlp.W_in))  # (layer, d_model, d_mlp)
    W_gate = property(lambda self: self._stack(lambda b: b.mlp.W_gate))  # (layer, d_model, d_mlp)
    W_out = property(lambda self: self._stack(lambda b: b.mlp.W_out))  # (layer, d_mlp, d_model)

    @property
    def device(self) -> torch.device:
        return self.embed.W_E.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.W_E.dtype

    # -- tokens ---------------------------------------------------------------------------------------
    def _need_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            raise InvalidInputError("This model has no tokenizer; pass token ids instead of text.")
        return self.tokenizer

    def encode(self, text: str, prepend_bos: bool | None = None) -> list[int]:
        """Token ids of one text, with BOS in front when the model's convention (or the caller) wants it."""
        if not text:
            raise InvalidInputError("The prompt is empty; give some text.")
        ids = self._need_tokenizer()(text, add_special_tokens=False)["input_ids"]
        bos = self.cfg.default_prepend_bos if prepend_bos is None else prepend_bos
        return ([self.cfg.bos_token_id] if bos and self.cfg.bos_token_id is not None else []) + list(ids)

    def to_tokens(self, input: str | Sequence[str], prepend_bos: bool | None = None, padding_side: str | None = None,
                  move_to_device: bool = True, truncate: bool = True) -> torch.Tensor:
        """(batch, pos) token ids, as TransformerLens' `to_tokens`: several texts are padded on the tokenizer's
        padding side (or `padding_side`), and the tensor remembers which ids are padding, so `model(tokens)`
        gives each row the logits it gets alone. Without `prepend_bos` the model's own BOS rule applies
        (warned about once where TransformerLens' differs; see `interp.model.tokenize`)."""
        from interp.model.tokenize import remember_mask, tl_batch

        tokens, mask = tl_batch(self, input, prepend_bos, padding_side, truncate)
        if move_to_device:
            tokens, mask = tokens.to(self.device), mask.to(self.device)
        return remember_mask(tokens, mask)

    def to_batch(
        self, text: str | Sequence[str], prepend_bos: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded (tokens, attention_mask), both (batch, pos). Left padding keeps every text's last
        token at position -1, which is where next-token questions are read. Internal: no BOS warning."""
        texts = [text] if isinstance(text, str) else list(text)
        return self.pad_left([self.encode(t, prepend_bos) for t in texts])

    def pad_left(self, ids: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token id lists -> left-padded (tokens, attention_mask), both (batch, max length)."""
        from interp.model.tokenize import padded, remember_mask

        tokens, mask = padded(self, ids, "left")
        tokens, mask = tokens.to(self.device), mask.to(self.device)
        return remember_mask(tokens, mask), mask

    def to_str_tokens(self, input: str | Sequence[str] | torch.Tensor, prepend_bos: bool | None = None,
                      padding_side: str | None = None) -> list[str] | list[list[str]]:
        """Each token as text; a list of texts gives one list per text (TransformerLens' shape)."""
        tok = self._need_tokenizer()
        if isinstance(input, (list, tuple)):
            return [self.to_str_tokens(t, prepend_bos, padding_side) for t in input]
        if isinstance(input, str):
            from interp.model.tokenize import warn_bos_once

            if prepend_bos is None:
                warn_bos_once(self)
            ids = self.encode(input, prepend_bos)
        else:
            ids = input.flatten().tolist()
        return [tok.decode([i]) for i in ids]

    def to_string(self, tokens: torch.Tensor | Sequence[int]) -> str:
        ids = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
        return self._need_tokenizer().decode(ids)

    def to_single_token(self, text: str) -> int:
        ids = self._need_tokenizer()(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise InvalidInputError(f"{text!r} is {len(ids)} tokens, not one.")
        return ids[0]

    # -- forward ----------------------------------------------------------------------------------------
    def forward(
        self,
        input: str | Sequence[str] | torch.Tensor,
        return_type: ReturnType = "logits",
        loss_per_token: bool = False,
        prepend_bos: bool | None = None,
        padding_side: str | None = None,
        attention_mask: torch.Tensor | None = None,
        start_at_layer: int | None = None,
        stop_at_layer: int | None = None,
        *,
        positions: torch.Tensor | None = None,
        past_kv: KVCache | None = None,
    ):
        """Run the model.

        input: text, texts (padded as `to_tokens` pads them), token ids (batch, pos), or with
        `start_at_layer` the residual stream (batch, pos, d_model) entering that layer. The arguments up to
        `stop_at_layer` are TransformerLens' `forward`'s, in its order.

        `attention_mask` (batch, pos) marks real tokens; positions default to each row's count of real
        tokens so far, so padding changes no real token's logits. Token ids given without a mask use the
        one `to_tokens` remembered for them, else leading pad ids count as padding (trailing ones too with
        `padding_side="right"`): the rule is in `interp.model.tokenize`. With a mask, the loss averages
        over real tokens only. `stop_at_layer=l` returns the residual stream entering layer l.
        """
        input, attention_mask = self._input_and_mask(input, prepend_bos, padding_side, attention_mask,
                                                     start_at_layer, past_kv)
        tokens = input if start_at_layer is None else None
        inputs = self._attention_inputs(attention_mask, positions, past_kv)

        if start_at_layer is None:
            resid = self.hook_embed(self.embed(tokens))
            if self.pos_embed is not None:
                resid = resid + self.hook_pos_embed(self.pos_embed(inputs.positions))
            start_at_layer = 0
        else:
            resid = input
        stop = self.cfg.n_layers if stop_at_layer is None else stop_at_layer
        resid = self._run_blocks(resid, inputs, range(start_at_layer, stop), past_kv)
        if stop_at_layer is not None or return_type == "resid":
            return resid
        if return_type is None:
            return None
        logits = self.logits_from_resid(resid)  # (b, p, vocab)
        if return_type == "logits":
            return logits
        if tokens is None:
            raise InvalidInputError("A loss needs token ids as input, not a residual stream.")
        loss = self.next_token_loss(logits, tokens, attention_mask, per_token=loss_per_token)
        return loss if return_type == "loss" else (logits, loss)

    def _input_and_mask(self, input, prepend_bos: bool | None, padding_side: str | None,
                        attention_mask: torch.Tensor | None, start_at_layer: int | None,
                        past_kv: KVCache | None) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward`'s input as a tensor and its (batch, pos) boolean mask of real tokens, its length checked."""
        if isinstance(input, (str, list, tuple)):
            # not truncated (TL's to_tokens would cut to n_ctx): text longer than the context is refused below
            input = self.to_tokens(input, prepend_bos, padding_side, truncate=False)
        if attention_mask is None and start_at_layer is None and past_kv is None:
            from interp.model.tokenize import mask_for

            attention_mask = mask_for(self, input, padding_side)  # None when nothing is padding
        b, p = input.shape[:2]
        if p == 0:
            raise InvalidInputError("The prompt is empty; give some text.")
        offset = past_kv.length if past_kv is not None else 0
        if offset + p > self.cfg.n_ctx:
            raise InvalidInputError(
                f"The input is {offset + p} tokens but {self.cfg.name} reads at most {self.cfg.n_ctx}."
            )
        if attention_mask is None:
            attention_mask = torch.ones((b, p), dtype=torch.bool, device=input.device)
        return input, attention_mask.bool()

    def _attention_inputs(self, attention_mask: torch.Tensor, positions: torch.Tensor | None,
                          past_kv: KVCache | None) -> AttentionInputs:
        """Positions (default: each row's count of real tokens so far) and the key mask, cached keys first."""
        default_positions = positions is None
        if positions is None:
            seen = past_kv.mask.sum(1, keepdim=True) if past_kv is not None and past_kv.mask is not None else 0
            positions = (attention_mask.cumsum(1) - 1).clamp(min=0) + seen
        if past_kv is not None:
            key_positions, key_mask = past_kv.extend(positions, attention_mask)
        else:
            key_positions, key_mask = positions, attention_mask
        # a mask of all True need not be applied; with default positions and nothing cached it is plain causal
        all_real = bool(key_mask.all())
        plain = all_real and past_kv is None and default_positions
        return AttentionInputs(positions, key_positions, None if all_real else key_mask, causal_from_zero=plain)

    def _run_blocks(self, resid: torch.Tensor, inputs: AttentionInputs, layers: range,
                    past_kv: KVCache | None) -> torch.Tensor:
        """The stream through `layers`; with a device map it follows the blocks, and each device gets one
        copy of the positions and masks."""
        on_device = {inputs.positions.device: inputs}
        for layer in layers:
            block = self.blocks[layer]
            device = block.attn.w_q.device
            resid = resid.to(device)  # a no-op on one device
            if device not in on_device:
                on_device[device] = inputs.to(device)
            resid = block(resid, on_device[device], past_kv.layers[layer] if past_kv is not None else None)
        return resid

    def logits_from_resid(self, resid: torch.Tensor) -> torch.Tensor:
        """The final residual stream (..., d_model) -> logits (..., vocab): final norm, unembedding, and the
        final soft-capping where the family has one (Gemma-2). Every analysis that reads logits off a residual
        stream goes through here, so no family's last step is forgotten."""
        normed = self.ln_final(resid.to(self.ln_final.w.device))
        logits = self.unembed(normed.to(self.unembed.weight.device))
        cap = self.cfg.final_logit_softcap
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    @staticmethod
    def next_token_loss(
        logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor | None = None, per_token: bool = False
    ) -> torch.Tensor:
        """Cross-entropy of predicting token t+1 from position t: (b, p-1) per token, or the masked mean."""
        logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
        nll = -logp.gather(-1, tokens[:, 1:, None])[..., 0]  # (b, p-1)
        if per_token:
            return nll
        if mask is None:
            return nll.mean()
        m = (mask[:, 1:] & mask[:, :-1]).float()
        return (nll * m).sum() / m.sum()

    # -- conveniences -----------------------------------------------------------------------------------
    _TL_CACHE_OPTIONS = ("device", "remove_batch_dim", "incl_bwd", "reset_hooks_end", "clear_contexts", "pos_slice")

    def run_with_cache(self, *args, names_filter=None, **kwargs):
        """As in TransformerLens; returns (output, ActivationCache). Pass `names_filter` to keep memory small.

        The common case (forward activations, no TransformerLens-only options) attaches plain torch forward
        hooks, removed in `finally`: ~3x less overhead per hook than TransformerLens' general machinery."""
        from interp.model.cache import ActivationCache

        if any(k in kwargs for k in self._TL_CACHE_OPTIONS):
            names = self._cache_names(names_filter)
            out, cache = super().run_with_cache(*args, names_filter=lambda n: n in names, **kwargs)
            return out, ActivationCache(dict(cache), self, has_batch_dim=not kwargs.get("remove_batch_dim"))
        store: dict[str, torch.Tensor] = {}
        handles = []
        try:
            for name in self._cache_names(names_filter):
                def save(module, inputs, output, name=name):
                    store[name] = output.detach()

                handles.append(self.hook_dict[name].register_forward_hook(save))
            out = self(*args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()
        return out, ActivationCache(store, self)

    # Per-head copies (heads x d_model per position) that exist only for path patching: a full cache leaves
    # them out, as TransformerLens does unless asked; name them (or hook them) to compute them.
    ON_REQUEST = ("hook_q_input", "hook_k_input", "hook_v_input", "hook_result")

    def _cache_names(self, names_filter) -> list[str]:
        if names_filter is None:
            return [n for n in self.hook_dict if not n.endswith(self.ON_REQUEST)]
        if isinstance(names_filter, str):
            return [names_filter]
        if callable(names_filter):
            return [n for n in self.hook_dict if names_filter(n)]
        unknown = [n for n in names_filter if n not in self.hook_dict]
        if unknown:
            raise KeyError(f"no hook point named {unknown[0]!r}")
        return list(names_filter)

    def generate(
        self,
        input: str | Sequence[str] | torch.Tensor = "",
        max_new_tokens: int = 10,
        stop_at_eos: bool = True,
        eos_token_id: int | Sequence[int] | None = None,
        do_sample: bool = True,
        top_k: int | None = None,
        top_p: float | None = None,
        temperature: float = 1.0,
        use_past_kv_cache: bool = True,
        prepend_bos: bool | None = None,
        padding_side: str | None = None,
        return_type: str | None = "input",
        verbose: bool = True,
        attention_mask: torch.Tensor | None = None,
        seed: int | None = None,
    ):
        """TransformerLens' `generate`, with its arguments and defaults: text in gives prompt + continuation
        as text; tokens in give tokens (batch, prompt + new), so `out[:, n:]` is the continuation. `seed`
        (interp's) makes sampling reproducible. See `interp.model.generate.generate_tl`; analyses use
        `interp.model.generate.generate`, which returns the continuation only."""
        from interp.model.generate import generate_tl

        return generate_tl(self, input, max_new_tokens=max_new_tokens, stop_at_eos=stop_at_eos,
                           eos_token_id=eos_token_id, do_sample=do_sample, top_k=top_k, top_p=top_p,
                           temperature=temperature, use_past_kv_cache=use_past_kv_cache, prepend_bos=prepend_bos,
                           padding_side=padding_side, return_type=return_type, verbose=verbose,
                           attention_mask=attention_mask, seed=seed)

    def init_weights(self, seed: int = 0, std: float = 0.02) -> Transformer:
        """Random weights for tiny test models: normal(0, std) matrices, unit norms, zero biases."""
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in self.named_parameters():
                leaf = name.rsplit(".", 1)[-1]
                if leaf == "w" and param.ndim == 1:
                    param.fill_(1.0)
                elif leaf.startswith("b") and param.ndim == 1:
                    param.zero_()
                else:
                    param.copy_(torch.randn(param.shape, generator=gen) * std)
        return self
