"""Checkpoint tensors -> interp's parameter names, for GGUF files and Hugging Face state dicts.

Two traps, both caught only by the parity tests against `transformers`:
- llama.cpp row-permutes LLaMA's Q and K projections for its interleaved RoPE; we undo it so the
  rotate-half RoPE of `components/rope.py` applies (Gemma's GGUF is not permuted).
- Gemma's RMSNorm computes x * (1 + w). GGUF stores 1 + w, Hugging Face stores w; we keep 1 + w.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from interp.errors import CorruptModelError
from interp.model.config import ModelConfig

# interp name (per layer, with {l}) <- GGUF name
_GGUF_LAYER = {
    "blocks.{l}.ln1.w": "blk.{l}.attn_norm.weight",
    "blocks.{l}.ln2.w": "blk.{l}.ffn_norm.weight",
    "blocks.{l}.ln1_post.w": "blk.{l}.post_attention_norm.weight",
    "blocks.{l}.ln2_post.w": "blk.{l}.post_ffw_norm.weight",
    "blocks.{l}.attn.w_q": "blk.{l}.attn_q.weight",
    "blocks.{l}.attn.w_k": "blk.{l}.attn_k.weight",
    "blocks.{l}.attn.w_v": "blk.{l}.attn_v.weight",
    "blocks.{l}.attn.w_o": "blk.{l}.attn_output.weight",
    "blocks.{l}.attn.q_norm.w": "blk.{l}.attn_q_norm.weight",
    "blocks.{l}.attn.k_norm.w": "blk.{l}.attn_k_norm.weight",
    "blocks.{l}.mlp.w_gate": "blk.{l}.ffn_gate.weight",
    "blocks.{l}.mlp.w_in": "blk.{l}.ffn_up.weight",
    "blocks.{l}.mlp.w_out": "blk.{l}.ffn_down.weight",
}
_GGUF_GLOBAL = {"embed.W_E": "token_embd.weight", "ln_final.w": "output_norm.weight", "unembed.W_U_rows": "output.weight"}

# interp name <- Hugging Face name (LLaMA / Gemma-3 layout)
_HF_LAYER = {
    "blocks.{l}.ln1.w": "model.layers.{l}.input_layernorm.weight",
    "blocks.{l}.ln2.w": "model.layers.{l}.post_attention_layernorm.weight",
    "blocks.{l}.attn.w_q": "model.layers.{l}.self_attn.q_proj.weight",
    "blocks.{l}.attn.w_k": "model.layers.{l}.self_attn.k_proj.weight",
    "blocks.{l}.attn.w_v": "model.layers.{l}.self_attn.v_proj.weight",
    "blocks.{l}.attn.w_o": "model.layers.{l}.self_attn.o_proj.weight",
    "blocks.{l}.attn.q_norm.w": "model.layers.{l}.self_attn.q_norm.weight",
    "blocks.{l}.attn.k_norm.w": "model.layers.{l}.self_attn.k_norm.weight",
    "blocks.{l}.mlp.w_gate": "model.layers.{l}.mlp.gate_proj.weight",
    "blocks.{l}.mlp.w_in": "model.layers.{l}.mlp.up_proj.weight",
    "blocks.{l}.mlp.w_out": "model.layers.{l}.mlp.down_proj.weight",
}
# Gemma-3 renames: its "post_attention_layernorm" is the post-norm of attention, the MLP's pre-norm is
# "pre_feedforward_layernorm".
_HF_GEMMA_LAYER = {
    **_HF_LAYER,
    "blocks.{l}.ln2.w": "model.layers.{l}.pre_feedforward_layernorm.weight",
    "blocks.{l}.ln1_post.w": "model.layers.{l}.post_attention_layernorm.weight",
    "blocks.{l}.ln2_post.w": "model.layers.{l}.post_feedforward_layernorm.weight",
}
_HF_GLOBAL = {"embed.W_E": "model.embed_tokens.weight", "ln_final.w": "model.norm.weight", "unembed.W_U_rows": "lm_head.weight"}


def unpermute_rope_rows(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo llama.cpp's Q/K row permutation: rows of each head go from (d/2, 2) back to (2, d/2) order."""
    out, inp = w.shape
    return w.reshape(n_heads, out // n_heads // 2, 2, inp).transpose(1, 2).reshape(out, inp)


def _collect(
    cfg: ModelConfig, layer_map: Mapping[str, str], global_map: Mapping[str, str], get: Callable[[str], torch.Tensor | None]
) -> dict[str, torch.Tensor]:
    wanted = _expected_names(cfg)
    state: dict[str, torch.Tensor] = {}
    for ours, theirs in global_map.items():
        if ours in wanted and (t := get(theirs)) is not None:
            state[ours] = t
    for layer in range(cfg.n_layers):
        for ours, theirs in layer_map.items():
            name = ours.format(l=layer)
            if name in wanted and (t := get(theirs.format(l=layer))) is not None:
                state[name] = t
    missing = sorted(wanted - state.keys())
    if missing:
        raise CorruptModelError(f"The checkpoint lacks {len(missing)} tensors the model needs, first {missing[0]}.")
    return state


def _expected_names(cfg: ModelConfig) -> set[str]:
    from interp.model.transformer import Transformer

    with torch.device("meta"):
        return set(Transformer(cfg).state_dict().keys())


def gguf_state_dict(cfg: ModelConfig, tensors: Mapping[str, np.ndarray], permuted_qk: bool) -> dict[str, torch.Tensor]:
    """Map dequantized GGUF arrays (already (out, in)) to interp's names."""

    def get(name: str) -> torch.Tensor | None:
        return torch.from_numpy(np.array(tensors[name], copy=True)) if name in tensors else None

    state = _collect(cfg, _GGUF_LAYER, _GGUF_GLOBAL, get)
    if permuted_qk:
        for layer in range(cfg.n_layers):
            q, k = f"blocks.{layer}.attn.w_q", f"blocks.{layer}.attn.w_k"
            state[q] = unpermute_rope_rows(state[q], cfg.n_heads)
            state[k] = unpermute_rope_rows(state[k], cfg.n_kv_heads)
    return state


def hf_state_dict(cfg: ModelConfig, tensors: Mapping[str, torch.Tensor], norm_plus_one: bool) -> dict[str, torch.Tensor]:
    """Map a Hugging Face LLaMA / Gemma-3 state dict to interp's names."""
    layer_map = _HF_GEMMA_LAYER if cfg.sandwich_norm else _HF_LAYER

    def get(name: str) -> torch.Tensor | None:
        for candidate in (name, name.replace("model.", "model.language_model.", 1), name.removeprefix("model.")):
            if candidate in tensors:
                return tensors[candidate]
        return None

    state = _collect(cfg, layer_map, _HF_GLOBAL, get)
    if norm_plus_one:
        state = {k: (v + 1 if k.endswith(".w") and v.ndim == 1 else v) for k, v in state.items()}
    return state


def gpt2_state_dict(cfg: ModelConfig, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a Hugging Face GPT-2 state dict (Conv1D weights stored (in, out)) to interp's names."""
    t = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    d = cfg.d_model
    state = {"embed.W_E": t["wte.weight"], "pos_embed.W_pos": t["wpe.weight"], "ln_final.w": t["ln_f.weight"], "ln_final.b": t["ln_f.bias"]}
    for layer in range(cfg.n_layers):
        p, o = f"h.{layer}.", f"blocks.{layer}."
        qkv_w, qkv_b = t[p + "attn.c_attn.weight"].T, t[p + "attn.c_attn.bias"]  # (3d, d), (3d,)
        for i, name in enumerate("qkv"):
            state[o + f"attn.w_{name}"] = qkv_w[i * d : (i + 1) * d]
            state[o + f"attn.b_{name}"] = qkv_b[i * d : (i + 1) * d]
        state[o + "attn.w_o"], state[o + "attn.b_o"] = t[p + "attn.c_proj.weight"].T, t[p + "attn.c_proj.bias"]
        state[o + "mlp.w_in"], state[o + "mlp.b_in"] = t[p + "mlp.c_fc.weight"].T, t[p + "mlp.c_fc.bias"]
        state[o + "mlp.w_out"], state[o + "mlp.b_out"] = t[p + "mlp.c_proj.weight"].T, t[p + "mlp.c_proj.bias"]
        for ln in ("ln_1", "ln_2"):
            ours = "ln1" if ln == "ln_1" else "ln2"
            state[o + f"{ours}.w"], state[o + f"{ours}.b"] = t[p + f"{ln}.weight"], t[p + f"{ln}.bias"]
    return {k: v.contiguous() for k, v in state.items()}
