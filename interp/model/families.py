"""The decoder families interp reads from Hugging Face folders: each as ModelConfig fields and a tensor map.

A folder's config.json is parsed by transformers' own config class (so legacy spellings such as
`rope_scaling` or `rotary_pct` are read exactly as transformers reads them), then translated here into
ModelConfig fields. Nothing is dropped silently:

- every field of the transformers config that changes the computation is either read here (`reads`) or must
  sit at the class default; anything else is refused by name (`check_config`);
- every tensor in the checkpoint is consumed by the tensor map, or the load stops naming the first one
  left over (`interp.model.convert`).

`FAMILIES` below lists each family with what it needs beyond LLaMA (`interp models` prints it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interp.errors import CorruptModelError
from interp.model.components.rope import KNOWN_ROPE_TYPES

# Fields of any transformers config that never change what a forward computes in eval mode.
HARMLESS = frozenset({
    "model_type", "architectures", "dtype", "torch_dtype", "transformers_version", "_name_or_path",
    "initializer_range", "use_cache", "attention_dropout", "hidden_dropout", "resid_pdrop", "embd_pdrop",
    "attn_pdrop", "classifier_dropout", "output_attentions", "output_hidden_states", "return_dict",
    "id2label", "label2id", "problem_type", "tokenizer_class", "pretraining_tp", "bos_token_id",
    "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id", "chunk_size_feed_forward",
    "summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels",
    "summary_first_dropout", "use_return_dict", "task_specific_params", "finetuning_task", "prefix",
    "tie_encoder_decoder", "torchscript", "use_bfloat16", "tf_legacy_loss", "layer_norm_epsilon_unused",
    "reorder_and_upcast_attn",  # GPT-2: the same result, computed in fp32
})
# Fields read by the common translation below.
COMMON = frozenset({
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "rope_parameters",
    "tie_word_embeddings", "hidden_act", "layer_types", "sliding_window", "use_sliding_window",
    "max_window_layers",
})
_ACTS = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh",
         "relu": "relu"}


@dataclass(frozen=True)
class Family:
    """One decoder family: how its transformers config becomes ModelConfig fields and where its tensors live."""

    name: str
    fields: Callable[[Any], dict]  # transformers config -> ModelConfig keyword arguments
    layout: str  # which tensor map of interp.model.convert applies
    features: str  # what it needs beyond LLaMA, for `interp models` and the README
    reads: frozenset[str] = frozenset()  # config fields read beyond COMMON
    norm_plus_one: bool = False  # checkpoint stores w of an x * (1 + w) norm


def _act(name: str) -> str:
    if name not in _ACTS:
        raise CorruptModelError(f"Activation {name!r} is not supported; interp knows {', '.join(_ACTS)}.")
    return _ACTS[name]


def _rope_scaling(params: dict, hf) -> dict | None:
    """The rope_parameters that change inv_freq beyond base and partial rotation; None for plain RoPE."""
    kind = params.get("rope_type", "default")
    if kind not in KNOWN_ROPE_TYPES:
        raise CorruptModelError(
            f"RoPE type {kind!r} is not supported; interp knows {', '.join(KNOWN_ROPE_TYPES)}.")
    if kind == "default":
        return None
    extra = {k: v for k, v in params.items() if k not in ("rope_theta", "partial_rotary_factor", "type")}
    extra["max_position_embeddings"] = hf.max_position_embeddings  # the initialisers read it from the config
    return extra


def _rope_fields(hf, d_head: int) -> dict:
    params = hf.rope_parameters or {}
    if "full_attention" in params or "sliding_attention" in params:  # per layer type (Gemma-3)
        full, local = params.get("full_attention", {}), params.get("sliding_attention")
    else:
        full, local = params, None
    out = dict(rope_base=float(full.get("rope_theta", 10_000.0)), rope_scaling=_rope_scaling(full, hf))
    if full.get("rope_type") == "dynamic":  # dynamic NTK exists to read past max_position_embeddings
        out["n_ctx"] = int(hf.max_position_embeddings * float(full.get("factor", 1.0)))
    partial = float(full.get("partial_rotary_factor", 1.0))
    if partial != 1.0:
        out["rotary_dim"] = int(d_head * partial)
    if local is not None:
        out.update(rope_base_local=float(local.get("rope_theta", 10_000.0)),
                   rope_scaling_local=_rope_scaling(local, hf))
    return out


def _layer_fields(hf) -> dict:
    """Sliding-window layers: from layer_types where the config has them, else all layers when a window is set."""
    window = getattr(hf, "sliding_window", None)
    types = getattr(hf, "layer_types", None)
    if types:
        unknown = sorted(set(types) - {"full_attention", "sliding_attention"})
        if unknown:
            raise CorruptModelError(
                f"Layer type {unknown[0]!r} is not supported; interp knows full_attention and sliding_attention.")
        kinds = tuple("local" if t == "sliding_attention" else "global" for t in types)
    else:
        kinds = ("local" if window else "global",) * hf.num_hidden_layers
    return dict(layer_types=kinds, sliding_window=window if "local" in kinds else None)


def common_fields(hf) -> dict:
    """What every RoPE decoder family spells the same way."""
    n_heads = hf.num_attention_heads
    d_head = getattr(hf, "head_dim", None) or hf.hidden_size // n_heads
    return dict(
        n_layers=hf.num_hidden_layers, d_model=hf.hidden_size, n_heads=n_heads,
        n_kv_heads=getattr(hf, "num_key_value_heads", None) or n_heads, d_head=d_head,
        d_mlp=hf.intermediate_size, d_vocab=hf.vocab_size, n_ctx=hf.max_position_embeddings,
        norm_eps=getattr(hf, "rms_norm_eps", 1e-6), tie_embeddings=bool(hf.tie_word_embeddings),
        act=_act(getattr(hf, "hidden_act", None) or getattr(hf, "hidden_activation", "silu")),
    ) | _rope_fields(hf, d_head) | _layer_fields(hf)


def _llama(hf) -> dict:
    bias = bool(getattr(hf, "attention_bias", False))
    return dict(**common_fields(hf), norm_cast_first=True, qkv_bias=bias, out_bias=bias,
                mlp_bias=bool(getattr(hf, "mlp_bias", False)))


def _phi3(hf) -> dict:
    fields = _llama(hf)
    original = getattr(hf, "original_max_position_embeddings", None)
    if (fields["rope_scaling"] or {}).get("rope_type") == "longrope" and original:
        fields["reencode_at"] = int(original) + 1
    return fields


def _qwen2(hf) -> dict:
    return dict(**common_fields(hf), norm_cast_first=True, qkv_bias=True)


def _qwen3(hf) -> dict:
    bias = bool(getattr(hf, "attention_bias", False))
    return dict(**common_fields(hf), norm_cast_first=True, qkv_bias=bias, out_bias=bias, qk_norm=True)


def _gemma(hf) -> dict:
    bias = bool(getattr(hf, "attention_bias", False))
    return dict(
        **common_fields(hf), qkv_bias=bias, out_bias=bias, sandwich_norm=True, embed_scale=hf.hidden_size ** 0.5,
        attn_scale=float(hf.query_pre_attn_scalar), attn_softcap=getattr(hf, "attn_logit_softcapping", None),
        final_logit_softcap=getattr(hf, "final_logit_softcapping", None),
    )


def _gemma3(hf) -> dict:
    return dict(**_gemma(hf), qk_norm=True)


def _olmo2(hf) -> dict:
    bias = bool(getattr(hf, "attention_bias", False))
    return dict(**common_fields(hf), qkv_bias=bias, out_bias=bias, pre_norm=False, sandwich_norm=True, qk_norm=True,
                qk_norm_per_head=False)


def _neox(hf) -> dict:
    bias = bool(hf.attention_bias)
    return dict(
        **{**common_fields(hf), "norm_eps": hf.layer_norm_eps}, norm="layer", gated_mlp=False,
        parallel_residual=bool(hf.use_parallel_residual), qkv_bias=bias, out_bias=bias, mlp_bias=True,
    )


def _gpt2(hf) -> dict:
    return dict(
        n_layers=hf.n_layer, d_model=hf.n_embd, n_heads=hf.n_head, d_head=hf.n_embd // hf.n_head,
        d_mlp=hf.n_inner or 4 * hf.n_embd, d_vocab=hf.vocab_size, n_ctx=hf.n_positions, norm="layer",
        norm_eps=hf.layer_norm_epsilon, positional="learned", act=_act(hf.activation_function), gated_mlp=False,
        qkv_bias=True, out_bias=True, mlp_bias=True, tie_embeddings=bool(hf.tie_word_embeddings),
    )


_GEMMA_READS = frozenset({"hidden_activation", "query_pre_attn_scalar", "attn_logit_softcapping",
                          "final_logit_softcapping", "attention_bias"})
FAMILIES: dict[str, Family] = {
    "llama": Family("Llama", _llama, "llama", "RoPE scaling (linear, dynamic, yarn, llama3, longrope); optional biases",
                    frozenset({"attention_bias", "mlp_bias"})),
    "mistral": Family("Mistral", _llama, "llama", "a sliding window on every layer"),
    "qwen2": Family("Qwen2", _qwen2, "llama", "biases on Q, K, V only; sliding layers from max_window_layers"),
    "qwen3": Family("Qwen3", _qwen3, "llama", "RMSNorm on each head's queries and keys", frozenset({"attention_bias"})),
    "gemma2": Family("Gemma-2", _gemma, "gemma", "(1 + w) and sandwich norms, attention and final logit soft-capping, "
                     "local/global layers", _GEMMA_READS, norm_plus_one=True),
    "gemma3_text": Family("Gemma-3", _gemma3, "gemma", "as Gemma-2 without soft-capping, Q/K norm, per-layer-type RoPE",
                          _GEMMA_READS | {"rope_local_base_freq"}, norm_plus_one=True),
    "phi3": Family("Phi-3", _phi3, "phi3", "fused qkv_proj and gate_up_proj; LongRoPE; partial rotary",
                   frozenset({"original_max_position_embeddings"})),
    "gpt_neox": Family("GPT-NeoX", _neox, "gpt_neox", "LayerNorm with bias, parallel residual, partial rotary, fused "
                       "per-head QKV", frozenset({"layer_norm_eps", "use_parallel_residual", "attention_bias"})),
    "olmo2": Family("OLMo-2", _olmo2, "olmo2", "norms after attention and MLP only, Q/K norm over all heads",
                    frozenset({"attention_bias"})),
    "gpt2": Family("GPT-2", _gpt2, "gpt2", "LayerNorm, learned positions, Conv1D weights",
                   frozenset({"n_layer", "n_embd", "n_head", "n_inner", "n_positions", "layer_norm_epsilon",
                              "activation_function"})),
}


def supported() -> str:
    return ", ".join(sorted({f.name for f in FAMILIES.values()}))


def family_of(model_type: str | None) -> Family:
    if model_type not in FAMILIES:
        raise CorruptModelError(f"Model type {model_type!r} is not supported; interp reads {supported()}.")
    return FAMILIES[model_type]


def check_config(hf, family: Family) -> None:
    """Refuse, by name, the first field that would change the computation and that interp does not read."""
    if getattr(hf, "quantization_config", None):
        raise CorruptModelError(
            "Quantized checkpoints (quantization_config) are not supported; use unquantized weights.")
    defaults = type(hf)().to_dict()
    for key, value in hf.to_dict().items():
        if key in HARMLESS or key in COMMON or key in family.reads or key not in defaults:
            continue
        if value != defaults[key]:
            raise CorruptModelError(
                f"Config field {key} = {value!r} changes the computation and interp does not implement it "
                f"for {family.name}.")
