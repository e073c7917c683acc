"""One transformer block: two residual updates, each reading a normalised copy of the stream.

    resid_pre ──┬──────────────────────────────(+)── resid_mid ──┬────────────────────────(+)── resid_post
                └─ ln1 ─ attn ─ [ln1_post] ─ attn_out ┘          └─ ln2 ─ mlp ─ [ln2_post] ─ mlp_out ┘
The bracketed post-norms exist only in sandwich-norm models (Gemma-2/3, OLMo-2); OLMo-2 has no ln1/ln2
(they pass the stream through, keeping their hook names). With a parallel residual (GPT-NeoX / Pythia) the
MLP reads ln2(resid_pre) instead of ln2(resid_mid): both sub-blocks see the same input, and
resid_post = resid_pre + attn_out + mlp_out.

Path patching needs each head's own copy of the attention input: when a hook watches hook_q_input,
hook_k_input or hook_v_input, the block hands attention per-head copies of resid_pre (b, p, heads,
d_model), each normalised by ln1 on its own, so one head's query input can be patched alone (as
TransformerLens' use_split_qkv_input). Unwatched, nothing is copied.
"""

from __future__ import annotations

import torch
from torch import nn

from interp.model.components.attention import Attention, AttentionInputs, LayerCache
from interp.model.components.hook import HookPoint, is_watched
from interp.model.components.mlp import MLP
from interp.model.components.norm import NoNorm, make_norm
from interp.model.config import ModelConfig


class Block(nn.Module):
    # hook_resid_post is the one residual stream the next block (or ln_final) reads: TransformerLens' logit
    # lens (`cache.logit_lens()`) checks for this flag before reading it
    hook_out_is_single_residual_stream = True

    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.parallel = cfg.parallel_residual
        self.ln1, self.ln2 = (make_norm(cfg), make_norm(cfg)) if cfg.pre_norm else (NoNorm(), NoNorm())
        self.ln1_post = make_norm(cfg) if cfg.sandwich_norm else nn.Identity()
        self.ln2_post = make_norm(cfg) if cfg.sandwich_norm else nn.Identity()
        self.attn = Attention(cfg, layer)
        self.mlp = MLP(cfg)
        self.n_heads, self.n_kv_heads = cfg.n_heads, cfg.n_kv_heads
        self.hook_resid_pre = HookPoint()  # (b, p, d_model)
        self.hook_q_input = HookPoint()  # (b, p, h, d_model), only when watched (see the module docstring)
        self.hook_k_input = HookPoint()  # (b, p, g, d_model)
        self.hook_v_input = HookPoint()  # (b, p, g, d_model)
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
        attn = self.attn(self._attention_input(resid_pre), inputs, cache)
        resid_mid = self.hook_resid_mid(resid_pre + self.hook_attn_out(self.ln1_post(attn)))
        mlp = self.mlp(self.ln2(resid_pre if self.parallel else resid_mid))
        return self.hook_resid_post(resid_mid + self.hook_mlp_out(self.ln2_post(mlp)))

    def _attention_input(self, resid_pre: torch.Tensor):
        if not (is_watched(self.hook_q_input) or is_watched(self.hook_k_input) or is_watched(self.hook_v_input)):
            return self.ln1(resid_pre)
        b, p, d = resid_pre.shape
        copies = lambda n: resid_pre[:, :, None].expand(b, p, n, d)  # noqa: E731 - (b, p, n, d_model)
        return (self.ln1(self.hook_q_input(copies(self.n_heads))), self.ln1(self.hook_k_input(copies(self.n_kv_heads))),
                self.ln1(self.hook_v_input(copies(self.n_kv_heads))))
