"""One transformer block: two residual updates, each reading a normalised copy of the stream.

    resid_pre ──┬──────────────────────────────(+)── resid_mid ──┬────────────────────────(+)── resid_post
                └─ ln1 ─ attn ─ [ln1_post] ─ attn_out ┘          └─ ln2 ─ mlp ─ [ln2_post] ─ mlp_out ┘
The bracketed post-norms exist only in sandwich-norm models (Gemma-2/3, OLMo-2); OLMo-2 has no ln1/ln2
(they pass the stream through, keeping their hook names). With a parallel residual (GPT-NeoX / Pythia) the
MLP reads ln2(resid_pre) instead of ln2(resid_mid): both sub-blocks see the same input, and
resid_post = resid_pre + attn_out + mlp_out.
"""

from __future__ import annotations

import torch
from torch import nn
from interp.model.components.hook import HookPoint

from interp.model.components.attention import Attention, AttentionInputs, LayerCache
from interp.model.components.mlp import MLP
from interp.model.components.norm import NoNorm, make_norm
from interp.model.config import ModelConfig


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.parallel = cfg.parallel_residual
        self.ln1, self.ln2 = (make_norm(cfg), make_norm(cfg)) if cfg.pre_norm else (NoNorm(), NoNorm())
        self.ln1_post = make_norm(cfg) if cfg.sandwich_norm else nn.Identity()
        self.ln2_post = make_norm(cfg) if cfg.sandwich_norm else nn.Identity()
        self.attn = Attention(cfg, layer)
        self.mlp = MLP(cfg)
        self.hook_resid_pre = HookPoint()  # (b, p, d_model)
        self.hook_attn_out = HookPoint()  # (b, p, d_model)
        self.hook_resid_mid = HookPoint()  # (b, p, d_model)
        self.hook_mlp_out = HookPoint()  # (b, p, d_model)
        self.hook_resid_post = HookPoint()  # (b, p, d_model)

    def forward(
        self,
        resid: torch.Tensor,
        inputs: AttentionInputs,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        resid_pre = self.hook_resid_pre(resid)
        attn = self.attn(self.ln1(resid_pre), inputs, cache)
        resid_mid = self.hook_resid_mid(resid_pre + self.hook_attn_out(self.ln1_post(attn)))
        mlp = self.mlp(self.ln2(resid_pre if self.parallel else resid_mid))
        return self.hook_resid_post(resid_mid + self.hook_mlp_out(self.ln2_post(mlp)))
