"""A small GGUF writer for the tiny twins: what llama.cpp's `convert_hf_to_gguf.py` writes for each family,
in fp32 (or f16), with a minimal byte-level BPE tokenizer in the metadata so that every reader can build one.

Tensor names come from the `gguf` package's own name map (the converter's), not from interp's loader, and
the converter's rewrites are redone here: Q/K rows permuted for `llama`, Gemma's norms stored as 1 + w,
GPT-NeoX's per-head QKV put back in [q; k; v] order, GPT-2's Conv1D weights transposed, Phi-3's LongRoPE
factors as tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests.model.families_twins import VOCAB

# transformers model_type -> llama.cpp architecture
ARCH = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma2": "gemma2",
        "gemma3_text": "gemma3", "phi3": "phi3", "gpt_neox": "gptneox", "olmo2": "olmo2", "gpt2": "gpt2"}


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute: each head's rows from (2, d/2) to (d/2, 2) order."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tensors(hf, arch: str) -> dict[str, np.ndarray]:
    import gguf

    cfg = hf.config
    n_layers = cfg.num_hidden_layers if hasattr(cfg, "num_hidden_layers") else cfg.n_layer
    enum = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    names = gguf.get_tensor_name_map(enum, n_layers)
    out: dict[str, np.ndarray] = {}
    for hf_name, t in hf.state_dict().items():
        if hf_name.endswith((".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq")):
            continue
        if hf_name == "lm_head.weight" and cfg.tie_word_embeddings and arch != "gpt2":
            continue  # tied: the converter writes no output tensor (GPT-2's converter writes a copy)
        w = t.detach().float().numpy().copy()
        base, suffix = hf_name.rsplit(".", 1)
        name = names.get_name(base)
        assert name is not None, hf_name
        if arch == "llama" and base.endswith(("q_proj", "k_proj")):
            heads = cfg.num_attention_heads if base.endswith("q_proj") else cfg.num_key_value_heads
            w = _permute(w, heads)
        if arch.startswith("gemma") and hf_name.endswith("norm.weight"):
            w = w + 1
        if arch == "gptneox" and base.endswith("query_key_value"):
            n, d = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
            w = w.reshape(n, 3, d, *w.shape[1:]).swapaxes(0, 1).reshape(w.shape)
        if arch == "gpt2" and suffix == "weight" and base.endswith(("c_attn", "c_proj", "c_fc")):
            w = w.T.copy()
        out[f"{name}.{suffix}"] = w
    return out


def _rope(cfg) -> dict:
    params = dict(getattr(cfg, "rope_parameters", None) or {})
    return params.get("full_attention", params)


def write_gguf(hf, path: Path, *, name: str = "tiny", f16: bool = False, extra_meta: dict | None = None,
               extra_tensors: dict | None = None, arch_name: str | None = None) -> Path:
    """Write the transformers model `hf` as llama.cpp would convert it; return the path. `arch_name` relabels
    the architecture (metadata prefix included), to test refusals."""
    import gguf

    cfg = hf.config
    arch = ARCH[cfg.model_type]
    tensors = _tensors(hf, arch)
    w = gguf.GGUFWriter(str(path), arch_name or arch)
    w.add_name(name)
    if arch == "gpt2":
        w.add_block_count(cfg.n_layer), w.add_context_length(cfg.n_positions), w.add_embedding_length(cfg.n_embd)
        w.add_feed_forward_length(cfg.n_inner or 4 * cfg.n_embd), w.add_head_count(cfg.n_head)
        w.add_layer_norm_eps(cfg.layer_norm_epsilon)
    else:
        d_head = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        rope = _rope(cfg)
        w.add_block_count(cfg.num_hidden_layers), w.add_context_length(cfg.max_position_embeddings)
        w.add_embedding_length(cfg.hidden_size), w.add_feed_forward_length(cfg.intermediate_size)
        w.add_head_count(cfg.num_attention_heads)
        w.add_head_count_kv(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads)
        if arch == "gptneox":
            w.add_layer_norm_eps(cfg.layer_norm_eps)
            w.add_rope_dimension_count(int(rope.get("partial_rotary_factor", 1.0) * d_head))
            w.add_parallel_residual(cfg.use_parallel_residual)
        else:
            w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
            w.add_rope_freq_base(rope.get("rope_theta", 10_000.0))
        if d_head != cfg.hidden_size // cfg.num_attention_heads or arch.startswith("gemma"):
            w.add_key_length(d_head), w.add_value_length(d_head)
        if arch == "llama":
            w.add_vocab_size(cfg.vocab_size), w.add_rope_dimension_count(d_head)
        kind = rope.get("rope_type", "default")
        if kind == "linear":
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR), w.add_rope_scaling_factor(rope["factor"])
        elif kind == "yarn":
            w.add_rope_scaling_type(gguf.RopeScalingType.YARN), w.add_rope_scaling_factor(rope["factor"])
            w.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
        elif kind == "llama3":
            tensors["rope_freqs.weight"] = _llama3_divisors(rope, d_head)
        if arch == "phi3":
            _phi3(w, cfg, rope, d_head, tensors)
        elif arch.startswith("gemma"):
            if getattr(cfg, "attn_logit_softcapping", None):
                w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
            if getattr(cfg, "final_logit_softcapping", None):
                w.add_final_logit_softcapping(cfg.final_logit_softcapping)
            w.add_sliding_window(cfg.sliding_window)
            if local := (getattr(cfg, "rope_parameters", None) or {}).get("sliding_attention"):
                w.add_rope_freq_base_swa(local["rope_theta"])
        elif arch == "llama" and getattr(cfg, "sliding_window", None):
            w.add_sliding_window(cfg.sliding_window)
    for key, value in (extra_meta or {}).items():
        (w.add_string if isinstance(value, str) else w.add_float32 if isinstance(value, float) else w.add_uint32)(
            f"{arch_name or arch}.{key}", value)
    _tokenizer(w)
    for tname, array in {**tensors, **(extra_tensors or {})}.items():
        w.add_tensor(tname, array.astype(np.float16) if f16 and array.ndim == 2 else array.astype(np.float32))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file()
    w.close()
    return Path(path)


def _phi3(w, cfg, rope: dict, d_head: int, tensors: dict) -> None:
    """Phi3MiniModel: rotary dims, a window of 0 when there is none, LongRoPE factors as tensors."""
    rot = int(rope.get("partial_rotary_factor", 1.0) * cfg.hidden_size) // cfg.num_attention_heads
    w.add_rope_dimension_count(rot)
    w.add_sliding_window(cfg.sliding_window or 0)
    original = getattr(cfg, "original_max_position_embeddings", None) or cfg.max_position_embeddings
    w.add_rope_scaling_orig_ctx_len(original)
    if rope.get("rope_type") == "longrope":
        scale = cfg.max_position_embeddings / original
        w.add_rope_scaling_attn_factors(float(np.sqrt(1 + np.log(scale) / np.log(original))) if scale > 1 else 1.0)
        tensors["rope_factors_long.weight"] = np.array(rope["long_factor"], dtype=np.float32)
        tensors["rope_factors_short.weight"] = np.array(rope["short_factor"], dtype=np.float32)


def _llama3_divisors(rope: dict, d_head: int) -> np.ndarray:
    """LlamaModel.generate_extra_tensors: Llama-3's scaling as one divisor per rotated pair."""
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = rope["original_max_position_embeddings"]
    out = []
    for freq in rope["rope_theta"] ** -(np.arange(0, d_head, 2, dtype=np.float64) / d_head):
        wavelen = 2 * np.pi / freq
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def _tokenizer(w) -> None:
    """A byte-level BPE vocabulary of exactly VOCAB tokens (single byte symbols and one merge); ids 0, 1, 2
    are pad, eos and bos as in the twins' configs."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    tokens = symbols[: VOCAB - 1] + [symbols[3] + symbols[4]]
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_merges([f"{symbols[3]} {symbols[4]}"])
    w.add_bos_token_id(2), w.add_eos_token_id(1), w.add_pad_token_id(0)
    w.add_add_bos_token(False)


def hf_from_gguf(path: Path):
    """transformers' own GGUF reader on the same file: eager attention, fp32, eval mode."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32,
                                                 attn_implementation="eager")
    return model.eval()
