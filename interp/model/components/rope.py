"""Rotary position embeddings (Su et al. 2021), in the "rotate half" layout transformers uses.

Each pair of dimensions (i, i + r/2) of a query or key is rotated by the angle pos * inv_freq[i], so a
query-key dot product depends only on their distance. Plain RoPE has inv_freq[i] = base^(-2i/r); the
context-extension variants (`linear`, `dynamic`, `yarn`, `llama3`, `longrope`) change inv_freq and may scale
cos/sin by an attention factor. Those are computed by transformers' own initialisers
(`ROPE_INIT_FUNCTIONS`), not re-derived here, so a Llama-3.1 or Phi-3 checkpoint rotates exactly as it does
there. Partial rotary (GPT-NeoX) rotates only the first r of each head's d_head dimensions.

GGUF files from llama.cpp store LLaMA's Q/K rows permuted for the interleaved layout; the loader undoes
that, so this one layout serves every model.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from interp.errors import CorruptModelError

# rope_type -> does inv_freq depend on how long the sequence is?
KNOWN_ROPE_TYPES = {"default": False, "linear": False, "llama3": False, "yarn": False, "dynamic": True,
                    "longrope": True}


class Rotary:
    """cos/sin tables for one RoPE setting; a plain object, not a module (nothing to train)."""

    def __init__(self, rot_dim: int, base: float, scaling: dict | None = None, n_ctx: int = 2048,
                 d_head: int | None = None):
        self.rot_dim, self.base = rot_dim, base
        self.d_head = d_head or rot_dim
        self.scaling = dict(scaling or {})
        self.rope_type = self.scaling.get("rope_type", "default")
        if self.rope_type not in KNOWN_ROPE_TYPES:
            raise CorruptModelError(
                f"RoPE type {self.rope_type!r} is not supported; interp knows {', '.join(KNOWN_ROPE_TYPES)}.")
        self.n_ctx = n_ctx
        self.inv_freq, self.attention_factor = self._init(None)
        self._long: tuple[torch.Tensor, float] | None = None

    @property
    def key(self) -> tuple:
        """Identifies the tables: two layers with equal keys share them within a forward."""
        return (self.rot_dim, self.base, repr(sorted(self.scaling.items())), self.n_ctx)

    def _init(self, seq_len: int | None) -> tuple[torch.Tensor, float]:
        with torch.device("cpu"):  # the tables live on the CPU even when the model is built on "meta"
            return self._compute(seq_len)

    def _compute(self, seq_len: int | None) -> tuple[torch.Tensor, float]:
        if self.rope_type == "default":
            exponent = torch.arange(0, self.rot_dim, 2, dtype=torch.int64).float() / self.rot_dim
            return 1.0 / (self.base ** exponent), 1.0
        from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

        params = {**self.scaling, "rope_theta": self.base, "partial_rotary_factor": self.rot_dim / self.d_head}
        # The initialisers read a transformers config; this carries exactly the fields they read.
        shim = SimpleNamespace(
            rope_parameters=params, standardize_rope_params=lambda: None, head_dim=self.d_head,
            hidden_size=self.d_head, num_attention_heads=1, max_position_embeddings=self.n_ctx,
        )
        try:
            inv_freq, factor = ROPE_INIT_FUNCTIONS[self.rope_type](shim, torch.device("cpu"), seq_len=seq_len)
        except (KeyError, TypeError) as exc:
            raise CorruptModelError(f"RoPE type {self.rope_type!r} lacks a parameter it needs: {exc}.") from exc
        return inv_freq.float(), float(factor)

    def tables_for(self, max_position: int) -> tuple[torch.Tensor, float]:
        """(inv_freq, attention factor) for a forward whose largest position is max_position.

        `dynamic` and `longrope` change with the sequence length, as transformers' `dynamic_rope_update`
        does for each call: dynamic NTK recomputes the base beyond max_position_embeddings, LongRoPE switches
        to its long factors beyond original_max_position_embeddings. (transformers also keeps a grown dynamic
        table for later shorter calls of the same model object; we recompute per call.)"""
        seq_len = max_position + 1
        if self.rope_type == "dynamic" and seq_len > self.n_ctx:
            return self._init(seq_len)
        if self.rope_type == "longrope":
            original = self.scaling.get("original_max_position_embeddings", self.n_ctx)
            if seq_len > original:
                if self._long is None:
                    self._long = self._init(original + 1)
                return self._long
        return self.inv_freq, self.attention_factor

    def cos_sin(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """positions (batch, pos) -> cos, sin (batch, pos, 1, rot_dim), computed in fp32."""
        inv_freq, factor = self.tables_for(int(positions.max()) if positions.numel() else 0)
        freqs = positions.float()[..., None] * inv_freq.to(positions.device)  # (batch, pos, rot_dim/2)
        emb = torch.cat([freqs, freqs], dim=-1)[:, :, None, :]  # (batch, pos, 1, rot_dim)
        cos, sin = emb.cos(), emb.sin()
        if factor != 1.0:
            cos, sin = cos * factor, sin * factor
        return cos.to(dtype), sin.to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (batch, pos, head, d_head) rotated by its positions' angles; with partial rotary only the first
    cos.shape[-1] dimensions turn and the rest pass through."""
    r = cos.shape[-1]
    if r == x.shape[-1]:
        return x * cos + rotate_half(x) * sin
    x_rot, x_pass = x[..., :r], x[..., r:]
    return torch.cat([x_rot * cos + rotate_half(x_rot) * sin, x_pass], dim=-1)
