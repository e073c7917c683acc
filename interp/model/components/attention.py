"""Causal self-attention with grouped-query heads, RoPE, optional Q/K norm and sliding windows.

Dimensions: b = batch, p = query positions, k = key positions (cached + new), h = query heads,
g = key/value heads (h // g query heads share one; GQA), d = d_head.

    q = x W_Q (b p h d)   k = x W_K (b k g d)   v = x W_V (b k g d)
    scores = q k^T / scale, masked (b h p k);  pattern = softmax(scores)
    z = pattern v (b p h d);  out = z W_O (b p d_model)

The pattern is computed explicitly (no fused kernel) so `hook_pattern` always sees it. hook_k and hook_v
carry the g key/value heads; hook_attn_scores, hook_pattern and hook_z carry all h query heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from interp.model.components.hook import HookPoint

from interp.model.components.norm import RMSNorm
from interp.model.components.rope import Rotary, apply_rotary
from interp.model.config import ModelConfig


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.cfg, self.layer = cfg, layer
        h, g, d, m = cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model
        self.w_q = nn.Parameter(torch.empty(h * d, m))
        self.w_k = nn.Parameter(torch.empty(g * d, m))
        self.w_v = nn.Parameter(torch.empty(g * d, m))
        self.w_o = nn.Parameter(torch.empty(m, h * d))
        if cfg.bias:
            self.b_q, self.b_k = nn.Parameter(torch.zeros(h * d)), nn.Parameter(torch.zeros(g * d))
            self.b_v, self.b_o = nn.Parameter(torch.zeros(g * d)), nn.Parameter(torch.zeros(m))
        else:
            self.b_q = self.b_k = self.b_v = self.b_o = None
        self.q_norm = RMSNorm(d, cfg.norm_eps) if cfg.qk_norm else None
        self.k_norm = RMSNorm(d, cfg.norm_eps) if cfg.qk_norm else None
        self.rotary = Rotary(d, cfg.rope_base_for(layer)) if cfg.positional == "rope" else None
        self.window = cfg.sliding_window if cfg.is_local(layer) else None

        self.hook_q = HookPoint()  # (b, p, h, d)
        self.hook_k = HookPoint()  # (b, p, g, d)
        self.hook_v = HookPoint()  # (b, p, g, d)
        self.hook_rot_q = HookPoint()  # (b, p, h, d)
        self.hook_rot_k = HookPoint()  # (b, p, g, d)
        self.hook_attn_scores = HookPoint()  # (b, h, p, k), masked entries at the dtype's minimum
        self.hook_pattern = HookPoint()  # (b, h, p, k)
        self.hook_z = HookPoint()  # (b, p, h, d)

    # TransformerLens-shaped views of the weights (shared storage).
    @property
    def W_Q(self) -> torch.Tensor:  # (h, d_model, d)
        return self.w_q.view(self.cfg.n_heads, self.cfg.d_head, -1).transpose(1, 2)

    @property
    def W_K(self) -> torch.Tensor:  # (g, d_model, d)
        return self.w_k.view(self.cfg.n_kv_heads, self.cfg.d_head, -1).transpose(1, 2)

    @property
    def W_V(self) -> torch.Tensor:  # (g, d_model, d)
        return self.w_v.view(self.cfg.n_kv_heads, self.cfg.d_head, -1).transpose(1, 2)

    @property
    def W_O(self) -> torch.Tensor:  # (h, d, d_model)
        return self.w_o.T.reshape(self.cfg.n_heads, self.cfg.d_head, -1)

    def forward(
        self,
        x: torch.Tensor,  # (b, p, d_model), already normalised
        inputs: AttentionInputs,  # positions and masks of this forward, shared by all layers
        cache: "LayerCache | None" = None,
    ) -> torch.Tensor:
        cfg = self.cfg
        b, p, _ = x.shape
        q = self.hook_q(F.linear(x, self.w_q, self.b_q).view(b, p, cfg.n_heads, cfg.d_head))
        k = self.hook_k(F.linear(x, self.w_k, self.b_k).view(b, p, cfg.n_kv_heads, cfg.d_head))
        v = self.hook_v(F.linear(x, self.w_v, self.b_v).view(b, p, cfg.n_kv_heads, cfg.d_head))
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rotary is not None:
            cos, sin = inputs.cos_sin(self.rotary, q.dtype)
            q = self.hook_rot_q(apply_rotary(q, cos, sin))
            k = self.hook_rot_k(apply_rotary(k, cos, sin))
        if cache is not None:
            k, v = cache.append(k, v)  # (b, k, g, d) with the earlier keys first

        # GQA: query head i reads key/value head i // group_size.
        qh = q.transpose(1, 2)  # (b, h, p, d)
        kh = k.transpose(1, 2).repeat_interleave(cfg.group_size, dim=1)  # (b, h, k, d)
        vh = v.transpose(1, 2).repeat_interleave(cfg.group_size, dim=1)  # (b, h, k, d)
        scores = qh @ kh.transpose(-1, -2) / cfg.scale  # (b, h, p, k)

        allowed = inputs.allowed(self.window)  # (b, p, k)
        scores = self.hook_attn_scores(scores.masked_fill(~allowed[:, None], torch.finfo(scores.dtype).min))
        pattern = self.hook_pattern(F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype))
        z = self.hook_z((pattern @ vh).transpose(1, 2))  # (b, p, h, d)
        return F.linear(z.reshape(b, p, cfg.n_heads * cfg.d_head), self.w_o, self.b_o)


class AttentionInputs:
    """What every layer's attention derives from the positions: the allowed (query, key) pairs and the RoPE
    tables. Built once per forward and memoised per window and per RoPE base, so 30 layers compute them
    once or twice, not 30 times."""

    def __init__(self, positions: torch.Tensor, key_positions: torch.Tensor, key_mask: torch.Tensor | None):
        self.positions = positions  # (b, p) absolute positions of the new tokens
        self.key_positions = key_positions  # (b, k) positions of all keys, cached first
        self.key_mask = key_mask  # (b, k) False for padding keys; None when all are real
        self._allowed: dict[int | None, torch.Tensor] = {}
        self._rope: dict[tuple[float, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def allowed(self, window: int | None) -> torch.Tensor:
        """(b, p, k) True where a query may attend to a key: causal, inside the window, not padding."""
        if window not in self._allowed:
            q, k = self.positions[:, :, None], self.key_positions[:, None, :]
            allowed = k <= q
            if window is not None:
                allowed = allowed & (q - k < window)
            if self.key_mask is not None:
                allowed = allowed & self.key_mask[:, None, :]
            self._allowed[window] = allowed
        return self._allowed[window]

    def cos_sin(self, rotary: Rotary, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (rotary.base, dtype)
        if key not in self._rope:
            self._rope[key] = rotary.cos_sin(self.positions, dtype)
        return self._rope[key]


class LayerCache:
    """Keys (after RoPE) and values of one layer, grown by `append` during generation."""

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.k = k if self.k is None else torch.cat([self.k, k], dim=1)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=1)
        return self.k, self.v
