"""Normalisation: RMSNorm (LLaMA, Gemma, ...) and LayerNorm (GPT-2, GPT-NeoX), with TransformerLens' hooks.

The hooks carry what TransformerLens 4's bridge carries: `hook_scale` the divisor (..., 1), `hook_normalized`
the normalised stream before the weight (and a LayerNorm's bias) multiplies it, so a hook or cache entry reads
the same number on interp and on TL; the weight applies after the hook.

Gemma's RMSNorm multiplies by (1 + w). We store the effective scale (1 + w) in `w`, so one RMSNorm
serves both families; converters add the 1 when a checkpoint stores w alone (GGUF already stores 1 + w).

Norm weights stay float32 whatever dtype the model is moved to: the references compute norms in fp32
(Gemma's 1 + w in particular, which bf16 could not hold exactly), and the scales are a tiny share of the
weights. `NoNorm` stands where a family has no norm (OLMo-2's sub-block inputs) so every block carries the
same hook names.
"""

from __future__ import annotations

import torch
from torch import nn

from interp.model.components.hook import HookPoint
from interp.model.config import ModelConfig


def _divide_by_rms(x: torch.Tensor, eps: float, hook_scale: HookPoint) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps). Multiplying by rsqrt rounds exactly as transformers does; when a hook
    watches `hook_scale` (TransformerLens' name for the root-mean-square) we divide by its output instead."""
    mean_square = x.pow(2).mean(-1, keepdim=True) + eps
    if hook_scale._forward_hooks or hook_scale._forward_pre_hooks:  # torch-level: any kind of hook
        return x / hook_scale(mean_square.sqrt())
    return x * torch.rsqrt(mean_square)


class _Fp32Weights(nn.Module):
    """A module whose floating-point parameters keep at least float32 through `.to(dtype)`, `.half()` and
    the like (float64 stays float64); the device follows the rest of the model."""

    def _apply(self, fn, recurse=True):
        def move_only(t: torch.Tensor) -> torch.Tensor:
            if not t.is_floating_point():
                return fn(t)
            moved = fn(t.detach()[:0])  # what fn does to an empty copy tells where it goes
            return t.to(device=moved.device, dtype=torch.promote_types(moved.dtype, torch.float32))

        return super()._apply(move_only, recurse)


class RMSNorm(_Fp32Weights):
    def __init__(self, d: int, eps: float, cast_first: bool = False):
        super().__init__()
        self.eps = eps
        self.cast_first = cast_first  # LLaMA rounds x/rms to the input dtype before the weight; Gemma does not
        self.w = nn.Parameter(torch.ones(d))
        self.hook_scale = HookPoint()  # (..., 1): the root-mean-square we divide by
        self.hook_normalized = HookPoint()  # (..., d): x / scale, before the weight (TransformerLens' bridge)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        work = torch.promote_types(dtype, torch.float32)  # statistics in fp32 (or fp64), as the references
        normed = _divide_by_rms(x.to(work), self.eps, self.hook_scale)
        if self.cast_first and dtype != work:
            normed = normed.to(dtype).to(work)
        return (self.hook_normalized(normed) * self.w.to(work)).to(dtype)


class NoNorm(nn.Module):
    """No normalisation (the input passes unchanged), with the hook names of a norm."""

    def __init__(self) -> None:
        super().__init__()
        self.hook_normalized = HookPoint()  # (..., d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hook_normalized(x)


class LayerNorm(_Fp32Weights):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d))
        self.b = nn.Parameter(torch.zeros(d))
        self.hook_scale = HookPoint()  # (..., 1): the standard deviation we divide by
        self.hook_normalized = HookPoint()  # (..., d): (x - mean) / scale, before the weight and bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        work = torch.promote_types(dtype, torch.float32)
        x = x.to(work)
        x = x - x.mean(-1, keepdim=True)
        normed = self.hook_normalized(_divide_by_rms(x, self.eps, self.hook_scale))
        return (normed * self.w.to(work) + self.b.to(work)).to(dtype)


def make_norm(cfg: ModelConfig, d: int | None = None) -> nn.Module:
    d = cfg.d_model if d is None else d
    return RMSNorm(d, cfg.norm_eps, cfg.norm_cast_first) if cfg.norm == "rms" else LayerNorm(d, cfg.norm_eps)
