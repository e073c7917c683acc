"""Hook names are public API (TransformerLens' names); build them here, never by hand elsewhere."""

from __future__ import annotations

HOOK_EMBED = "hook_embed"
HOOK_POS_EMBED = "hook_pos_embed"
LN_FINAL = "ln_final.hook_normalized"


def resid_pre(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_pre"


def resid_mid(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_mid"


def resid_post(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_post"


def attn_out(layer: int) -> str:
    return f"blocks.{layer}.hook_attn_out"


def mlp_out(layer: int) -> str:
    return f"blocks.{layer}.hook_mlp_out"


def attn(layer: int, what: str) -> str:
    """what: q, k, v, rot_q, rot_k, attn_scores, pattern, z, result."""
    return f"blocks.{layer}.attn.hook_{what}"


def mlp(layer: int, what: str) -> str:
    """what: pre (gate pre-activation), pre_linear (up projection, gated MLPs), post (input of W_out)."""
    return f"blocks.{layer}.mlp.hook_{what}"


def ln(layer: int, which: str = "ln1", what: str = "normalized") -> str:
    return f"blocks.{layer}.{which}.hook_{what}"


def qkv_input(layer: int, which: str) -> str:
    """Per-head copies of a block's attention input (which: q, k or v); computed only when hooked."""
    return f"blocks.{layer}.hook_{which}_input"


def result(layer: int) -> str:
    """Each head's output (b, p, h, d_model), summing to hook_attn_out less the bias; only when hooked."""
    return attn(layer, "result")


def pattern(layer: int) -> str:
    return attn(layer, "pattern")


def z(layer: int) -> str:
    return attn(layer, "z")


def mlp_post(layer: int) -> str:
    return mlp(layer, "post")


def residual(layer: int, where: str = "pre") -> str:
    """The residual stream entering (pre) or leaving (post) a block, or between its halves (mid).

    resid_pre(l + 1) carries the same values as resid_post(l); resid_pre(n_layers) is not a hook: use
    resid_post(n_layers - 1).
    """
    return {"pre": resid_pre, "mid": resid_mid, "post": resid_post}[where](layer)
