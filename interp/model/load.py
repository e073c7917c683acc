"""Loading: registered names, GGUF files and Hugging Face directories, with a dequantized-weight cache.

A GGUF load reads the file's metadata into a ModelConfig, dequantizes every tensor to fp32 (the `gguf`
package), maps names (convert.py) and builds the tokenizer from the metadata (`transformers`). The result
is cached as safetensors + config + tokenizer under cache_dir()/weights/<sha256 of the file>, so the
second load skips dequantization and tokenizer conversion.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from interp.errors import CorruptModelError, InvalidInputError
from interp.model.config import ModelConfig
from interp.model.registry import MODELS, cache_dir, resolve
from interp.model.transformer import Transformer


def load_model(
    name_or_path: str = "smollm2-135m",
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device = "cpu",
    use_cache: bool = True,
) -> Transformer:
    """A registered name (`interp.model.registry.MODELS`), a .gguf file, or a Hugging Face directory."""
    dtype = _parse_dtype(dtype)
    if name_or_path in MODELS:
        model = load_gguf(resolve(name_or_path), use_cache=use_cache, name=name_or_path)
    else:
        path = Path(name_or_path)
        if path.is_dir():
            model = load_hf_dir(path)
        elif path.suffix == ".gguf" and path.exists():
            model = load_gguf(path, use_cache=use_cache)
        else:
            from interp.model.registry import get_spec

            get_spec(name_or_path)  # raises UnknownModelError listing the known names
            raise AssertionError("unreachable")
    return model.to(device=resolve_device(device), dtype=dtype).eval()


def resolve_device(device: str | torch.device) -> torch.device:
    """"auto" -> cuda if available, then mps, then cpu; anything else as torch reads it."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInputError(f"Unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"Device {device!r} was asked for but this machine has no CUDA GPU; use --device cpu.")
    return dev


def _parse_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise InvalidInputError(f"Unknown dtype {dtype!r}; use one of {', '.join(table)}.")
    return table[dtype]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


# -- GGUF ------------------------------------------------------------------------------------------------
def _read_gguf(path: Path):
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


def config_from_gguf(meta: dict, name: str, d_vocab: int, tie_embeddings: bool) -> ModelConfig:
    arch = meta.get("general.architecture")
    g = lambda key, default=None: meta.get(f"{arch}.{key}", default)  # noqa: E731
    common = dict(
        name=name,
        architecture=arch,
        n_layers=int(g("block_count")),
        d_model=int(g("embedding_length")),
        n_heads=int(g("attention.head_count")),
        n_kv_heads=int(g("attention.head_count_kv", g("attention.head_count"))),
        d_mlp=int(g("feed_forward_length")),
        n_ctx=int(g("context_length")),
        norm_eps=float(g("attention.layer_norm_rms_epsilon", 1e-5)),
        rope_base=float(g("rope.freq_base", 10_000.0)),
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        pad_token_id=meta.get("tokenizer.ggml.padding_token_id"),
        default_prepend_bos=bool(meta.get("tokenizer.ggml.add_bos_token", True)),
        d_vocab=d_vocab,
        tie_embeddings=tie_embeddings,
    )
    if arch == "llama":
        return ModelConfig(**common, d_head=common["d_model"] // common["n_heads"], act="silu")
    if arch == "gemma3":
        d_head = int(g("attention.key_length", 256))
        n_layers = common["n_layers"]
        # Not in the metadata: transformers' Gemma-3 defaults (every 6th layer global, local RoPE base 1e4,
        # queries scaled by query_pre_attn_scalar = 256 = d_head for the 270M model).
        pattern = 6
        layer_types = tuple("global" if (i + 1) % pattern == 0 else "local" for i in range(n_layers))
        return ModelConfig(
            **common, d_head=d_head, act="gelu_tanh", qk_norm=True, sandwich_norm=True,
            embed_scale=common["d_model"] ** 0.5, attn_scale=256.0, rope_base_local=10_000.0,
            sliding_window=int(g("attention.sliding_window", 512)), layer_types=layer_types,
        )
    raise CorruptModelError(f"GGUF architecture {arch!r} is not supported; interp reads llama and gemma3 GGUF files.")


def load_gguf(path: Path, use_cache: bool = True, name: str | None = None) -> Transformer:
    path = Path(path)
    if not path.exists():
        raise CorruptModelError(f"{path} does not exist.")
    sha = file_sha256(path)
    cached = cache_dir() / "weights" / sha
    if use_cache and (cached / "model.safetensors").exists():
        try:
            return load_hf_dir(cached, name=name)
        except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt, never trusted
            shutil.rmtree(cached, ignore_errors=True)
    reader = _read_gguf(path)
    meta = gguf_metadata(reader)
    from gguf.quants import dequantize

    try:
        arrays = {t.name: dequantize(t.data, t.tensor_type) for t in reader.tensors}
    except Exception as exc:  # noqa: BLE001
        raise CorruptModelError(f"{path} has tensors that cannot be decoded (truncated or corrupt): {exc}.") from exc
    if "token_embd.weight" not in arrays:
        raise CorruptModelError(f"{path} has no token_embd.weight tensor.")
    cfg = config_from_gguf(meta, name or path.stem, arrays["token_embd.weight"].shape[0], "output.weight" not in arrays)
    from interp.model.convert import gguf_state_dict

    state = gguf_state_dict(cfg, arrays, permuted_qk=cfg.architecture == "llama")
    tokenizer = _gguf_tokenizer(path)
    model = _build(cfg, state, tokenizer)
    if use_cache:
        _write_cache(cached, model, source=str(path), sha=sha)
    return model


def _gguf_tokenizer(path: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as exc:  # noqa: BLE001
        raise CorruptModelError(f"The tokenizer in {path} cannot be built: {exc}.") from exc


def _build(cfg: ModelConfig, state: dict[str, torch.Tensor], tokenizer) -> Transformer:
    with torch.device("meta"):
        model = Transformer(cfg, tokenizer)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    return model


def _write_cache(target: Path, model: Transformer, source: str, sha: str) -> None:
    """Write atomically: a half-written cache entry must never be read back."""
    from safetensors.torch import save_file

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
        (tmp / "interp_config.json").write_text(json.dumps({**model.cfg.to_dict(), "source": source, "sha256": sha}))
        if model.tokenizer is not None:
            model.tokenizer.save_pretrained(str(tmp))
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # a cache we cannot write is only slower, not wrong


# -- Hugging Face directories -------------------------------------------------------------------------
def config_from_hf(hf: dict, name: str) -> ModelConfig:
    mt = hf.get("model_type")
    if mt == "gemma3":
        hf = {**hf, **hf.get("text_config", {})}
        mt = "gemma3_text"
    if mt == "gpt2":
        return ModelConfig(
            name=name, architecture="gpt2", n_layers=hf["n_layer"], d_model=hf["n_embd"], n_heads=hf["n_head"],
            d_head=hf["n_embd"] // hf["n_head"], d_mlp=hf.get("n_inner") or 4 * hf["n_embd"], d_vocab=hf["vocab_size"],
            n_ctx=hf["n_positions"], norm="layer", norm_eps=hf.get("layer_norm_epsilon", 1e-5), positional="learned",
            act="gelu_tanh", gated_mlp=False, bias=True, bos_token_id=hf.get("bos_token_id"),
            eos_token_id=hf.get("eos_token_id"), default_prepend_bos=True,
        )
    rope = hf.get("rope_parameters") or {}
    common = dict(
        name=name, n_layers=hf["num_hidden_layers"], d_model=hf["hidden_size"], n_heads=hf["num_attention_heads"],
        n_kv_heads=hf.get("num_key_value_heads"), d_mlp=hf["intermediate_size"], d_vocab=hf["vocab_size"],
        n_ctx=hf.get("max_position_embeddings", 2048), norm_eps=hf.get("rms_norm_eps", 1e-6),
        bos_token_id=hf.get("bos_token_id"), eos_token_id=_first(hf.get("eos_token_id")),
        pad_token_id=hf.get("pad_token_id"), tie_embeddings=hf.get("tie_word_embeddings", True),
    )
    d_head = hf.get("head_dim") or hf["hidden_size"] // hf["num_attention_heads"]
    if mt == "llama":
        base = hf.get("rope_theta") or rope.get("rope_theta", 10_000.0)
        return ModelConfig(**common, architecture="llama", d_head=d_head, rope_base=float(base), act="silu",
                           default_prepend_bos=True)
    if mt == "gemma3_text":
        types = hf.get("layer_types") or [
            "full_attention" if (i + 1) % hf.get("sliding_window_pattern", 6) == 0 else "sliding_attention"
            for i in range(hf["num_hidden_layers"])
        ]
        full = rope.get("full_attention", rope) if isinstance(rope, dict) else {}
        local = rope.get("sliding_attention", {}) if isinstance(rope, dict) else {}
        return ModelConfig(
            **common, architecture="gemma3", d_head=d_head, act="gelu_tanh", qk_norm=True, sandwich_norm=True,
            embed_scale=hf["hidden_size"] ** 0.5, attn_scale=float(hf.get("query_pre_attn_scalar", d_head)),
            rope_base=float(hf.get("rope_theta") or full.get("rope_theta", 1_000_000.0)),
            rope_base_local=float(hf.get("rope_local_base_freq") or local.get("rope_theta", 10_000.0)),
            sliding_window=hf.get("sliding_window", 512),
            layer_types=tuple("global" if t == "full_attention" else "local" for t in types),
        )
    raise CorruptModelError(f"Model type {mt!r} is not supported; interp reads llama, gemma3 and gpt2 directories.")


def _first(x):
    return x[0] if isinstance(x, list) else x


def load_hf_dir(path: Path, name: str | None = None) -> Transformer:
    """A directory with config.json (or interp_config.json from our cache) and *.safetensors files."""
    from safetensors.torch import load_file

    path = Path(path)
    ours = path / "interp_config.json"
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise CorruptModelError(f"{path} has no .safetensors weights.")
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            tensors.update(load_file(str(f)))
        except Exception as exc:  # noqa: BLE001
            raise CorruptModelError(f"{f} cannot be read (truncated or corrupt): {exc}.") from exc
    tokenizer = _dir_tokenizer(path)
    if ours.exists():
        cfg = ModelConfig.from_dict(json.loads(ours.read_text()))
        if name:
            cfg = cfg.replace(name=name)
        return _build(cfg, tensors, tokenizer)
    if not (path / "config.json").exists():
        raise CorruptModelError(f"{path} has no config.json.")
    hf = json.loads((path / "config.json").read_text())
    cfg = config_from_hf(hf, name or path.name)
    from interp.model.convert import gpt2_state_dict, hf_state_dict

    if cfg.architecture == "gpt2":
        state = gpt2_state_dict(cfg, tensors)
    else:
        state = hf_state_dict(cfg, tensors, norm_plus_one=cfg.architecture == "gemma3")
    if not cfg.tie_embeddings and "unembed.W_U_rows" not in state:
        cfg = cfg.replace(tie_embeddings=True)
    return _build(cfg, state, tokenizer)


def _dir_tokenizer(path: Path):
    if not any((path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))
