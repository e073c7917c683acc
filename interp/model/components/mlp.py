"""The feed-forward network: plain (GPT-2, GPT-NeoX) or gated (SwiGLU for LLaMA, tanh-GELU GeGLU for Gemma).

Weights are stored as F.linear wants them (out, in); `W_in`, `W_gate`, `W_out` are TransformerLens-shaped
views of the same storage, so an in-place edit of a view edits the model.
    gated: post = act(x W_gate) * (x W_in);   plain: post = act(x W_in);   out = post W_out
`hook_post` is the input of W_out: the "key" of ROME and the "neuron" of knowledge-neuron attribution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from interp.model.components.hook import HookPoint
from interp.model.config import ModelConfig

_ACTS = {
    "silu": F.silu,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gated = cfg.gated_mlp
        self.act = _ACTS[cfg.act]
        self.w_in = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))  # up projection
        self.w_gate = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model)) if self.gated else None
        self.w_out = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))  # down projection
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp)) if cfg.mlp_bias else None
        self.b_gate = nn.Parameter(torch.zeros(cfg.d_mlp)) if cfg.mlp_bias and self.gated else None
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model)) if cfg.mlp_bias else None
        self.hook_pre = HookPoint()  # (batch, pos, d_mlp): pre-activation of the gate (or of W_in)
        self.hook_pre_linear = HookPoint()  # (batch, pos, d_mlp): x W_in of a gated MLP
        self.hook_post = HookPoint()  # (batch, pos, d_mlp)

    @property
    def W_in(self) -> torch.Tensor:
        return self.w_in.T  # (d_model, d_mlp)

    @property
    def W_gate(self) -> torch.Tensor | None:
        return None if self.w_gate is None else self.w_gate.T

    @property
    def W_out(self) -> torch.Tensor:
        return self.w_out.T  # (d_mlp, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            gate = self.hook_pre(F.linear(x, self.w_gate, self.b_gate))
            post = self.act(gate) * self.hook_pre_linear(F.linear(x, self.w_in, self.b_in))
        else:
            post = self.act(self.hook_pre(F.linear(x, self.w_in, self.b_in)))
        return F.linear(self.hook_post(post), self.w_out, self.b_out)
