"""GGUF metadata -> ModelConfig: what llama.cpp's converter (`convert_hf_to_gguf.py`) says of the model, and
what it leaves out.

Facts the metadata does not carry come from llama.cpp's own graph code, cited where used (Gemma's local and
global layer pattern and query scale, GPT-NeoX's exact GELU). Every metadata key under the architecture's prefix
is either read here or known not to change the forward; any other key stops the load with one sentence naming
it. The tensors and the load itself are `interp.model.gguf`'s.
"""

from __future__ import annotations

import numpy as np

from interp.errors import CorruptModelError
from interp.model.config import ModelConfig

SUPPORTED = ("llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "gptneox", "olmo2", "gpt2")
# Keys under "{arch}." that never change the forward (the vocabulary's size, whether RoPE was fine-tuned).
_HARMLESS = {"vocab_size", "rope.scaling.finetuned"}
# How each architecture computes beyond what the metadata says (llama.cpp's graph for it, and transformers').
_ARCH_FIELDS: dict[str, dict] = {
    "llama": dict(act="silu", norm_cast_first=True),
    "qwen2": dict(act="silu", norm_cast_first=True),
    "qwen3": dict(act="silu", norm_cast_first=True, qk_norm=True),
    "phi3": dict(act="silu", norm_cast_first=True),
    "gemma2": dict(act="gelu_tanh", sandwich_norm=True),
    "gemma3": dict(act="gelu_tanh", sandwich_norm=True, qk_norm=True),
    "olmo2": dict(act="silu", pre_norm=False, sandwich_norm=True, qk_norm=True, qk_norm_per_head=False),
    # llama.cpp's GPT-NeoX graph uses GELU; Pythia's config says the exact (erf) one, as transformers computes
    "gptneox": dict(act="gelu", norm="layer", gated_mlp=False),
    "gpt2": dict(act="gelu_tanh", norm="layer", gated_mlp=False, positional="learned"),
}


class _Meta:
    """The "{arch}." keys of one file, remembering which were read so the rest can be checked."""

    def __init__(self, meta: dict, arch: str):
        self.meta, self.prefix, self.read = meta, arch + ".", set(_HARMLESS)

    def __call__(self, key: str, default=None):
        self.read.add(key)
        return self.meta.get(self.prefix + key, default)

    def __contains__(self, key: str) -> bool:
        return self.prefix + key in self.meta

    def require(self, key: str):
        if self.prefix + key not in self.meta:
            raise CorruptModelError(f"The GGUF metadata lacks {self.prefix + key}, which the model needs.")
        return self(key)

    def unread(self) -> list[str]:
        return sorted(k for k in self.meta if k.startswith(self.prefix) and k[len(self.prefix):] not in self.read)


def config_from_gguf(meta: dict, name: str, arrays: dict[str, np.ndarray]) -> tuple[ModelConfig, set[str]]:
    """The model the metadata (and which tensors exist) describe, and the tensors read here (RoPE factors)."""
    arch = meta.get("general.architecture")
    if arch not in SUPPORTED:
        raise CorruptModelError(
            f"GGUF architecture {arch!r} is not supported; interp reads {', '.join(SUPPORTED)} GGUF files.")
    m = _Meta(meta, arch)
    n_heads = int(m.require("attention.head_count"))
    d_model = int(m.require("embedding_length"))
    n_kv = m("attention.head_count_kv", n_heads)
    if isinstance(n_kv, list):  # per layer in some files; interp has one count for all layers
        if len(set(n_kv)) != 1:
            raise CorruptModelError(
                f"{arch}.attention.head_count_kv differs between layers ({n_kv}), which interp does not implement.")
        n_kv = n_kv[0]
    d_head = int(m("attention.key_length", d_model // n_heads))
    if m("attention.value_length", d_head) != d_head:
        raise CorruptModelError(
            f"{arch}.attention.value_length differs from the key length, which interp does not implement.")
    if m("attention.causal", True) is not True:
        raise CorruptModelError(f"{arch}.attention.causal is false: interp implements causal decoders only.")
    has = lambda t: f"blk.0.{t}" in arrays  # noqa: E731 - biases and norms exist on every layer or none
    fields = dict(
        name=name, architecture=arch, n_layers=int(m.require("block_count")), d_model=d_model, n_heads=n_heads,
        n_kv_heads=int(n_kv), d_head=d_head, d_mlp=int(m.require("feed_forward_length")),
        d_vocab=arrays["token_embd.weight"].shape[0], n_ctx=int(m("context_length", 2048)),
        tie_embeddings="output.weight" not in arrays,
        qkv_bias=has("attn_q.bias") or has("attn_qkv.bias"), out_bias=has("attn_output.bias"),
        mlp_bias=has("ffn_up.bias") or has("ffn_down.bias"),
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"), eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        pad_token_id=meta.get("tokenizer.ggml.padding_token_id"),
        default_prepend_bos=bool(meta.get("tokenizer.ggml.add_bos_token", True)),
    ) | _ARCH_FIELDS[arch]
    if fields.get("norm") == "layer":
        fields["norm_eps"] = float(m.require("attention.layer_norm_epsilon"))
    else:
        fields["norm_eps"] = float(m("attention.layer_norm_rms_epsilon", 1e-5))
    consumed: set[str] = set()
    if arch != "gpt2":
        fields |= _rope_fields(m, fields, arrays, consumed)
    fields |= _attention_fields(m, fields)
    if arch == "gptneox":
        fields["parallel_residual"] = bool(m("use_parallel_residual", True))
    if arch.startswith("gemma"):
        fields["embed_scale"] = d_model ** 0.5
    if unread := m.unread():
        raise CorruptModelError(
            f"GGUF metadata {unread[0]} = {meta[unread[0]]!r} is not implemented by interp for {arch}.")
    try:
        return ModelConfig(**fields), consumed
    except ValueError as exc:
        raise CorruptModelError(f"The GGUF metadata describes an impossible model: {exc}.") from exc


def _rope_fields(m: _Meta, fields: dict, arrays: dict, consumed: set[str]) -> dict:
    """RoPE's config fields: the base and the rotated dimensions, the context scaling (recording in `consumed`
    the tensors it reads), and Gemma-3's base for its local layers."""
    out = _rotation_fields(m, fields["d_head"])
    out |= _scaling_fields(m, fields["n_ctx"], arrays, consumed)
    if m.prefix == "gemma3.":
        # llama.cpp's Gemma-3 graph: local layers rotate with base 1e4 unless the file says otherwise
        out["rope_base_local"] = float(m("rope.freq_base_swa", 10_000.0))
    return out


def _rotation_fields(m: _Meta, d_head: int) -> dict:
    """The base, and how many dimensions of each head rotate when not all of them do."""
    out: dict = dict(rope_base=float(m("rope.freq_base", 10_000.0)))
    rot = int(m("rope.dimension_count", d_head))
    if rot != d_head:
        if m.prefix == "llama.":  # the permutation spans whole heads; a partial rotation would need its own
            raise CorruptModelError(
                f"llama.rope.dimension_count = {rot} is not the head size {d_head}; interp does not implement it.")
        out["rotary_dim"] = rot
    return out


def _scaling_fields(m: _Meta, n_ctx: int, arrays: dict, consumed: set[str]) -> dict:
    """rope_scaling as transformers' config spells it (None: unscaled), from the metadata's scaling type or
    from the tensors the converter writes instead of one; LongRoPE adds reencode_at."""
    kind = m("rope.scaling.type", "none")
    factor = m("rope.scaling.factor")
    original = m("rope.scaling.original_context_length")
    attn_factor = m("rope.scaling.attn_factor")
    factors = ("rope_factors_long.weight", "rope_factors_short.weight")
    if kind == "none" and m.prefix == "phi3." and all(f in arrays for f in factors):
        kind = "longrope"  # the Phi-3 converter writes the factors as tensors and no scaling type
    out: dict = {}
    if "rope_freqs.weight" in arrays:  # llama3-style scaling, which the converter bakes into per-pair divisors
        if kind != "none":
            raise CorruptModelError(
                f"The GGUF file has both rope_freqs and {kind!r} RoPE scaling, which interp does not implement.")
        # inv_freq = base^(-2i/d) / rope_freqs[i]: LongRoPE's formula with equal short and long factors, an
        # original context of the whole context (never switching) and no attention factor
        divisors = [float(x) for x in arrays["rope_freqs.weight"]]
        scaling = {"rope_type": "longrope", "short_factor": divisors, "long_factor": divisors,
                   "original_max_position_embeddings": n_ctx, "attention_factor": 1.0}
        consumed.add("rope_freqs.weight")
    elif kind == "none":
        scaling = None
    elif kind in ("linear", "yarn") and (factor is None or (kind == "yarn" and original is None)):
        raise CorruptModelError(
            f"RoPE scaling {kind!r} in the GGUF metadata lacks its factor or original context length.")
    elif kind == "linear":
        scaling = {"rope_type": "linear", "factor": float(factor)}
    elif kind == "yarn":
        scaling = _yarn_scaling(m, factor, original, attn_factor)
    elif kind == "longrope":
        scaling = _longrope_scaling(arrays, factors, original, attn_factor, n_ctx)
        consumed.update(factors)
        # transformers re-reads the whole sequence once LongRoPE switches to its long factors
        out["reencode_at"] = scaling["original_max_position_embeddings"] + 1
    else:
        raise CorruptModelError(f"RoPE scaling type {kind!r} in the GGUF metadata is not implemented by interp.")
    if scaling is not None:
        scaling["max_position_embeddings"] = n_ctx  # the initialisers read it from the config
    out["rope_scaling"] = scaling
    return out


def _yarn_scaling(m: _Meta, factor, original, attn_factor) -> dict:
    scaling = {"rope_type": "yarn", "factor": float(factor), "original_max_position_embeddings": int(original)}
    for key, theirs in (("beta_fast", "yarn_beta_fast"), ("beta_slow", "yarn_beta_slow"),
                        ("attention_factor", "yarn_attn_factor")):
        if (value := m(f"rope.scaling.{theirs}")) is not None:
            scaling[key] = float(value)
    if attn_factor is not None:
        scaling["attention_factor"] = float(attn_factor)
    return scaling


def _longrope_scaling(arrays: dict, factors: tuple[str, str], original, attn_factor, n_ctx: int) -> dict:
    if not all(f in arrays for f in factors):
        raise CorruptModelError(
            "LongRoPE scaling needs the rope_factors_long and rope_factors_short tensors, which the file lacks.")
    original = int(original if original is not None else n_ctx)
    scaling = {"rope_type": "longrope", "original_max_position_embeddings": original,
               "long_factor": [float(x) for x in arrays[factors[0]]],
               "short_factor": [float(x) for x in arrays[factors[1]]]}
    if attn_factor is not None:
        scaling["attention_factor"] = float(attn_factor)
    return scaling


def _attention_fields(m: _Meta, fields: dict) -> dict:
    n_layers, arch = fields["n_layers"], m.prefix[:-1]
    window = int(m("attention.sliding_window", 0) or 0)
    pattern = m("attention.sliding_window_pattern")
    out: dict = {}
    if arch.startswith("gemma"):
        # llama.cpp's Gemma graphs: queries scaled by 1/sqrt(d_head), except the 27B models (46 and 62 layers),
        # which use d_model / n_heads as their query_pre_attn_scalar; a file may state the scale itself
        scale = m("attention.scale")
        big = (arch == "gemma2" and n_layers == 46) or (arch == "gemma3" and n_layers == 62)
        out["attn_scale"] = (float(scale) ** -2 if scale else
                             float(fields["d_model"] // fields["n_heads"] if big else fields["d_head"]))
        out["attn_softcap"] = _cap(m("attn_logit_softcapping"))
        out["final_logit_softcap"] = _cap(m("final_logit_softcapping"))
        if pattern is None:  # llama.cpp: every 2nd (Gemma-2) or 6th (Gemma-3) layer is global
            pattern = 2 if arch == "gemma2" else 6
    elif arch in ("qwen2", "qwen3"):
        # llama.cpp's qwen2 and qwen3 graphs attend globally on every layer, whatever a file says of a window
        window = 0
    if not window:
        if pattern is not None and (pattern is True or (isinstance(pattern, list) and any(pattern))):
            raise CorruptModelError(
                f"{arch}.attention.sliding_window_pattern names sliding layers but no window is set.")
        return out
    if pattern is None:
        local = [True] * n_layers
    elif isinstance(pattern, list):
        local = [bool(x) for x in pattern]
    else:  # every pattern-th layer is global
        local = [(i + 1) % int(pattern) != 0 for i in range(n_layers)]
    if len(local) != n_layers:
        raise CorruptModelError(
            f"{arch}.attention.sliding_window_pattern has {len(local)} entries for {n_layers} layers.")
    if arch == "olmo2" and not all(local) and fields.get("rope_scaling"):
        # OLMo-3 (written as olmo2) scales RoPE on its global layers only, which interp's one setting cannot say
        raise CorruptModelError(
            "olmo2 files with both sliding-window layers and RoPE scaling are not implemented by interp.")
    return out | dict(sliding_window=window, layer_types=tuple("local" if x else "global" for x in local))


def _cap(value) -> float | None:
    return float(value) if value else None
