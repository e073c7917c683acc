"""Rotary position embeddings (Su et al. 2021), in the "rotate half" layout transformers uses.

Each pair of dimensions (i, i + d/2) of a query or key is rotated by the angle pos * base^(-2i/d), so a
query-key dot product depends only on their distance. GGUF files from llama.cpp store LLaMA's Q/K rows
permuted for the interleaved layout; the loader undoes that, so this one layout serves every model.
"""

from __future__ import annotations

import torch


class Rotary:
    """cos/sin tables for one base, grown on demand; a plain object, not a module (nothing to train)."""

    def __init__(self, d_head: int, base: float):
        self.d_head = d_head
        self.base = base
        self.inv_freq = 1.0 / (base ** (torch.arange(0, d_head, 2, dtype=torch.int64, device="cpu").float() / d_head))

    def cos_sin(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """positions (batch, pos) -> cos, sin (batch, pos, 1, d_head), computed in fp32."""
        freqs = positions.float()[..., None] * self.inv_freq.to(positions.device)  # (batch, pos, d_head/2)
        emb = torch.cat([freqs, freqs], dim=-1)[:, :, None, :]  # (batch, pos, 1, d_head)
        return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (batch, pos, head, d_head) rotated by its positions' angles."""
    return x * cos + rotate_half(x) * sin
