"""Normalisation: RMSNorm (LLaMA, Gemma) and LayerNorm (GPT-2), with TransformerLens' hooks.

Gemma's RMSNorm multiplies by (1 + w). We store the effective scale (1 + w) in `w`, so one RMSNorm
serves both families; converters add the 1 when a checkpoint stores w alone (GGUF already stores 1 + w).
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


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d))
        self.hook_scale = HookPoint()  # (..., 1): the root-mean-square we divide by
        self.hook_normalized = HookPoint()  # (..., d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()  # statistics in fp32, as the reference does, whatever the model dtype
        return self.hook_normalized((_divide_by_rms(x, self.eps, self.hook_scale) * self.w.float()).to(dtype))


class LayerNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d))
        self.b = nn.Parameter(torch.zeros(d))
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x - x.mean(-1, keepdim=True)
        return self.hook_normalized((_divide_by_rms(x, self.eps, self.hook_scale) * self.w.float() + self.b.float()).to(dtype))


def make_norm(cfg: ModelConfig, d: int | None = None) -> nn.Module:
    d = cfg.d_model if d is None else d
    return RMSNorm(d, cfg.norm_eps) if cfg.norm == "rms" else LayerNorm(d, cfg.norm_eps)
