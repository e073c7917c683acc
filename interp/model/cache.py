"""A dictionary of activations with the few helpers people reach for, keyed by hook name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import torch

from interp.model import hook_names

if TYPE_CHECKING:
    from interp.model.transformer import Transformer


class ActivationCache:
    def __init__(self, cache: dict[str, torch.Tensor], model: Transformer):
        self.cache_dict = cache
        self.model = model

    def __getitem__(self, key: str | tuple) -> torch.Tensor:
        """cache["blocks.3.attn.hook_pattern"], or TransformerLens' shorthand cache["pattern", 3]."""
        if isinstance(key, tuple):
            kind, layer = key[0], key[1]
            key = self._shorthand(kind, layer)
        return self.cache_dict[key]

    @staticmethod
    def _shorthand(kind: str, layer: int) -> str:
        if kind in ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"):
            return f"blocks.{layer}.hook_{kind}"
        if kind in ("q", "k", "v", "rot_q", "rot_k", "attn_scores", "pattern", "z"):
            return hook_names.attn(layer, kind)
        if kind in ("pre", "pre_linear", "post"):
            return hook_names.mlp(layer, kind)
        raise KeyError(f"unknown activation kind {kind!r}")

    def __contains__(self, key: str) -> bool:
        return key in self.cache_dict

    def __iter__(self) -> Iterator[str]:
        return iter(self.cache_dict)

    def __len__(self) -> int:
        return len(self.cache_dict)

    def keys(self):
        return self.cache_dict.keys()

    def items(self):
        return self.cache_dict.items()

    def values(self):
        return self.cache_dict.values()

    def accumulated_resid(self, pos: int | slice = slice(None)) -> torch.Tensor:
        """The residual stream entering each layer and after the last: (n_layers + 1, batch, pos', d_model).
        Needs resid_pre of every layer and resid_post of the last in the cache."""
        n = self.model.cfg.n_layers
        parts = [self.cache_dict[hook_names.resid_pre(layer)] for layer in range(n)]
        parts.append(self.cache_dict[hook_names.resid_post(n - 1)])
        return torch.stack([x[:, pos] for x in parts])

    def logit_lens(self, pos: int = -1) -> torch.Tensor:
        """Logits read off the residual stream after each layer (final norm + unembed): (n_layers, b, vocab)."""
        resid = self.accumulated_resid(pos)[1:]
        return self.model.unembed(self.model.ln_final(resid))

    def to(self, device) -> ActivationCache:
        return ActivationCache({k: v.to(device) for k, v in self.cache_dict.items()}, self.model)
