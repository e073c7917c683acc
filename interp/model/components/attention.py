"""Causal self-attention with grouped-query heads, RoPE, optional Q/K norm, soft-capping and sliding windows.

Dimensions: b = batch, p = query positions, k = key positions (cached + new), h = query heads,
g = key/value heads (h // g query heads share one; GQA), d = d_head.

    q = x W_Q (b p h d)   k = x W_K (b k g d)   v = x W_V (b k g d)
    scores = q k^T / scale [soft-capped], masked (b h p k);  pattern = softmax(scores)
    z = pattern v (b p h d);  out = z W_O (b p d_model)

When a hook watches `hook_attn_scores` or `hook_pattern` (run_with_cache asking for them included), the
pattern is computed explicitly so the hook sees it; otherwise attention runs through PyTorch's fused
`scaled_dot_product_attention`, which gives the same z (to float rounding) without materialising the
pattern. Soft-capped scores (Gemma-2) always take the explicit path: the fused kernel cannot cap. hook_k
and hook_v carry the g key/value heads; hook_attn_scores, hook_pattern and hook_z carry all h query heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from interp.model.components.hook import HookPoint, is_watched
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
        if cfg.qkv_bias:
            self.b_q, self.b_k = nn.Parameter(torch.zeros(h * d)), nn.Parameter(torch.zeros(g * d))
            self.b_v = nn.Parameter(torch.zeros(g * d))
        else:
            self.b_q = self.b_k = self.b_v = None
        self.b_o = nn.Parameter(torch.zeros(m)) if cfg.out_bias else None
        # Q/K norm: over each head's d dims (Gemma-3, Qwen3) or over all heads' h*d at once (OLMo-2)
        q_width, k_width = (d, d) if cfg.qk_norm_per_head else (h * d, g * d)
        self.q_norm = RMSNorm(q_width, cfg.norm_eps, cfg.norm_cast_first) if cfg.qk_norm else None
        self.k_norm = RMSNorm(k_width, cfg.norm_eps, cfg.norm_cast_first) if cfg.qk_norm else None
        if cfg.positional == "rope":
            scaling = cfg.rope_scaling_for(layer) or {}
            self.rotary = Rotary(cfg.rot_dim, cfg.rope_base_for(layer), scaling,
                                 n_ctx=scaling.get("max_position_embeddings", cfg.n_ctx), d_head=d)
        else:
            self.rotary = None
        self.window = cfg.sliding_window if cfg.is_local(layer) else None
        self.softcap = cfg.attn_softcap

        self.hook_q = HookPoint()  # (b, p, h, d)
        self.hook_k = HookPoint()  # (b, p, g, d)
        self.hook_v = HookPoint()  # (b, p, g, d)
        self.hook_rot_q = HookPoint()  # (b, p, h, d)
        self.hook_rot_k = HookPoint()  # (b, p, g, d)
        self.hook_attn_scores = HookPoint()  # (b, h, p, k), masked entries at the dtype's minimum
        self.hook_pattern = HookPoint()  # (b, h, p, k)
        self.hook_z = HookPoint()  # (b, p, h, d)
        self.hook_result = HookPoint()  # (b, p, h, d_model): each head's output, written out only when watched

    # TransformerLens-shaped views of the weights (shared storage).
    @property
    def W_Q(self) -> torch.Tensor:  # (h, d_model, d)
        return self.w_q.view(self.cfg.n_heads, self.cfg.d_head, -1).transpose(1, 2)

    # W_K / W_V have one slice per *query* head, as TransformerLens' grouped-query attention: query head h
    # reads key/value head h // group_size (repeat_interleave), so W_K[h] pairs with W_Q[h]. With GQA they
    # are copies; _W_K / _W_V are the g stored heads, views that share the weights' storage.
    @property
    def _W_K(self) -> torch.Tensor:  # (g, d_model, d)
        return self.w_k.view(self.cfg.n_kv_heads, self.cfg.d_head, -1).transpose(1, 2)

    @property
    def _W_V(self) -> torch.Tensor:  # (g, d_model, d)
        return self.w_v.view(self.cfg.n_kv_heads, self.cfg.d_head, -1).transpose(1, 2)

    @property
    def W_K(self) -> torch.Tensor:  # (h, d_model, d)
        return self._per_query_head(self._W_K)

    @property
    def W_V(self) -> torch.Tensor:  # (h, d_model, d)
        return self._per_query_head(self._W_V)

    def _per_query_head(self, w: torch.Tensor) -> torch.Tensor:
        group = self.cfg.n_heads // self.cfg.n_kv_heads
        return w if group == 1 else w.repeat_interleave(group, dim=0)  # (g, ...) -> (h, ...)

    @property
    def W_O(self) -> torch.Tensor:  # (h, d, d_model)
        return self.w_o.T.reshape(self.cfg.n_heads, self.cfg.d_head, -1)

    def forward(
        self,
        x: torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        inputs: AttentionInputs,  # positions and masks of this forward, shared by all layers
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """x: the normalised stream (b, p, d_model), or per-head normalised inputs of the queries (b, p, h,
        d_model), keys and values (b, p, g, d_model) when the block splits them (path patching)."""
        q, k, v = self._qkv(x, inputs)
        if cache is not None:
            k, v = cache.append(k, v)  # (b, k, g, d) with the earlier keys first
        allowed = inputs.allowed(self.window)  # (b, p, k)
        if self.softcap or is_watched(self.hook_attn_scores) or is_watched(self.hook_pattern):
            z = self._explicit(q, k, v, allowed)
        else:
            z = self._fused(q, k, v, allowed, inputs)
        z = self.hook_z(z)  # (b, p, h, d)
        b, p = z.shape[:2]
        if is_watched(self.hook_result):  # per-head outputs, summed afterwards (TransformerLens' hook_result)
            result = self.hook_result(torch.einsum("bphd,hdm->bphm", z, self.W_O))  # (b, p, h, d_model)
            return result.sum(2) if self.b_o is None else result.sum(2) + self.b_o
        return F.linear(z.reshape(b, p, self.cfg.n_heads * self.cfg.d_head), self.w_o, self.b_o)

    def _project(self, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, n: int) -> torch.Tensor:
        """(b, p, n, d) from the shared input (b, p, d_model) or per-head inputs (b, p, n, d_model)."""
        b, p = x.shape[:2]
        if x.dim() == 3:
            return F.linear(x, w, bias).view(b, p, n, self.cfg.d_head)
        out = torch.einsum("bpnm,ndm->bpnd", x, w.view(n, self.cfg.d_head, -1))
        return out if bias is None else out + bias.view(n, self.cfg.d_head)

    def _qkv(self, x, inputs: AttentionInputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Projected, normed and rotated queries (b p h d), keys and values (b p g d)."""
        cfg = self.cfg
        xq, xk, xv = x if isinstance(x, tuple) else (x, x, x)
        b, p = xq.shape[:2]
        q = self.hook_q(self._project(xq, self.w_q, self.b_q, cfg.n_heads))
        k = self.hook_k(self._project(xk, self.w_k, self.b_k, cfg.n_kv_heads))
        v = self.hook_v(self._project(xv, self.w_v, self.b_v, cfg.n_kv_heads))
        if self.q_norm is not None and cfg.qk_norm_per_head:
            q, k = self.q_norm(q), self.k_norm(k)
        elif self.q_norm is not None:  # one norm over all heads together: flatten, norm, split again
            q = self.q_norm(q.flatten(-2)).view(b, p, cfg.n_heads, cfg.d_head)
            k = self.k_norm(k.flatten(-2)).view(b, p, cfg.n_kv_heads, cfg.d_head)
        if self.rotary is not None:
            cos, sin = inputs.cos_sin(self.rotary, q.dtype)
            q = self.hook_rot_q(apply_rotary(q, cos, sin))
            k = self.hook_rot_k(apply_rotary(k, cos, sin))
        return q, k, v

    def _explicit(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """The pattern written out, through hook_attn_scores and hook_pattern; z (b, p, h, d)."""
        # GQA: query head i reads key/value head i // group_size. The group's query heads are stacked along
        # the query axis, (b, g, group * p, d), so each key/value head is read in place, never copied.
        b, p, h, d = q.shape
        g, n_keys = k.shape[2], k.shape[1]
        qh = q.transpose(1, 2).reshape(b, g, h // g * p, d)  # (b, g, group * p, d)
        kh, vh = k.transpose(1, 2), v.transpose(1, 2)  # (b, g, k, d)
        scores = (qh @ kh.transpose(-1, -2)).view(b, h, p, n_keys) * self.cfg.scaling  # (b, h, p, k)
        if self.softcap:
            scores = torch.tanh(scores / self.softcap) * self.softcap
        scores = self.hook_attn_scores(scores.masked_fill(~allowed[:, None], torch.finfo(scores.dtype).min))
        pattern = self.hook_pattern(F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype))
        z = pattern.reshape(b, g, h // g * p, n_keys) @ vh  # (b, g, group * p, d)
        return z.view(b, h, p, d).transpose(1, 2)  # (b, p, h, d)

    def _fused(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor,
               inputs: AttentionInputs) -> torch.Tensor:
        """The same z through the fused kernel; the pattern is never materialised. A query with no allowed
        key (a padding position) would give NaN there; it attends to everything instead, as its output is
        never read."""
        if inputs.plain_causal(self.window):  # the kernel's own causal mask: no mask tensor to read
            mask, causal = None, True
        else:
            mask, causal = (allowed | ~allowed.any(-1, keepdim=True))[:, None], False  # (b, 1, p, k)
        z = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),  # (b, h, p, d), (b, g, k, d), (b, g, k, d)
            attn_mask=mask, is_causal=causal, scale=self.cfg.scaling, enable_gqa=self.cfg.group_size > 1,
        )  # (b, h, p, d)
        return z.transpose(1, 2)


class AttentionInputs:
    """What every layer's attention derives from the positions: the allowed (query, key) pairs and the RoPE
    tables. Built once per forward and memoised per window and per RoPE setting, so 30 layers compute them
    once or twice, not 30 times."""

    def __init__(self, positions: torch.Tensor, key_positions: torch.Tensor, key_mask: torch.Tensor | None,
                 causal_from_zero: bool = False):
        self.positions = positions  # (b, p) absolute positions of the new tokens
        self.key_positions = key_positions  # (b, k) positions of all keys, cached first
        self.key_mask = key_mask  # (b, k) False for padding keys; None when all are real
        self.causal_from_zero = causal_from_zero  # positions are 0..p-1 in every row and keys are the queries
        self._allowed: dict[int | None, torch.Tensor] = {}
        self._rope: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

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

    def to(self, device: torch.device) -> AttentionInputs:
        """The same inputs on another device (for blocks placed there by a device map)."""
        mask = None if self.key_mask is None else self.key_mask.to(device)
        return AttentionInputs(self.positions.to(device), self.key_positions.to(device), mask, self.causal_from_zero)

    def plain_causal(self, window: int | None) -> bool:
        """True when the allowed pairs are exactly "key <= query" (no padding, no cache, window not reached)."""
        return self.causal_from_zero and (window is None or window >= self.positions.shape[1])

    def cos_sin(self, rotary: Rotary, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (rotary.key, dtype)
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
