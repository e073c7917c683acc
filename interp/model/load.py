"""Loading: registered names, GGUF files and Hugging Face directories, straight to a dtype and device.

A Hugging Face folder's config.json is read by transformers' own config class and translated by its
family (families.py); its tensors are read one at a time, converted (convert.py) and placed (`Placement`)
before the next is read. GGUF files (gguf.py) are dequantized once and cached as safetensors + config +
tokenizer under cache_dir()/weights/, which then loads through the same folder path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch

from interp.errors import CorruptModelError, InvalidInputError
from interp.model.config import ModelConfig
from interp.model.convert import is_norm_param
from interp.model.device import resolve_device
from interp.model.families import Family, check_config, family_of, supported
from interp.model.gguf import load_gguf
from interp.model.registry import MODELS, weights_source
from interp.model.transformer import Transformer

DeviceMap = dict[str, "str | int | torch.device"]


def load_model(
    name_or_path: str = "smollm2-135m",
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device = "cpu",
    use_cache: bool = True,
    device_map: DeviceMap | str | None = None,
    process_weights: bool | dict = False,
) -> Transformer:
    """A registered name (`interp.model.registry.MODELS`), a .gguf file, or a Hugging Face directory.

    Every tensor goes from the file straight to `dtype` and `device` (norm scales stay float32, as the
    references compute norms in fp32). `device_map` places parts of the model on several devices, as
    accelerate's maps do: {"embed": "cuda:0", "blocks.0": "cuda:0", ..., "ln_final": "cuda:1"}, or "auto"
    to spread the blocks evenly over every visible GPU; the residual stream moves between them.
    Freed CPU memory is kept for reuse from here on (`interp.allocator`; INTERP_KEEP_FREED_MEMORY=0: not).

    The weights are the checkpoint's, unprocessed. `process_weights=True` applies TransformerLens' weight
    processing after loading (what `TransformerBridge.enable_compatibility_mode()` computes: norms folded,
    writing weights and unembedding centred, value biases folded; `interp.model.processing`); a dict of TL's
    option names (`{"center_unembed": False}`) changes single steps. `model.processing` says which weights
    are loaded. The weight cache on disk always holds the checkpoint's weights."""
    from interp.allocator import keep_freed_memory

    options = _processing_options(process_weights)  # refuse a bad option before the slow part
    keep_freed_memory()
    kw = dict(dtype=_parse_dtype(dtype), device=resolve_device(device), device_map=device_map)
    model = _load(name_or_path, use_cache, kw)
    if options is not None:
        from interp.model.processing import process_weights as process

        process(model, **options)
    return model


def _processing_options(process_weights: bool | dict) -> dict | None:
    """None (no processing) or TransformerLens' keyword options for `processing.process_weights`."""
    from interp.model.processing import OPTIONS

    if process_weights is True:
        return {}
    if process_weights is False or process_weights is None:
        return None
    if not isinstance(process_weights, dict):
        raise InvalidInputError(f"process_weights must be True, False or a dict of options, not {process_weights!r}.")
    unknown = sorted(set(process_weights) - set(OPTIONS))
    if unknown:
        raise InvalidInputError(f"Unknown weight-processing option {unknown[0]!r}; "
                                f"the options are {', '.join(OPTIONS)}.")
    return dict(process_weights)


def _load(name_or_path: str, use_cache: bool, kw: dict) -> Transformer:
    kind, path = weights_source(name_or_path)
    if kind == "hf":
        return load_hf_dir(path, **kw)
    return load_gguf(path, use_cache=use_cache, **({"name": name_or_path} if name_or_path in MODELS else {}), **kw)


class Placement:
    """Where each parameter goes: its dtype (norm scales stay fp32) and device (by the longest matching
    prefix of the device map, else the one device)."""

    def __init__(self, dtype: torch.dtype, device: str | torch.device, device_map: DeviceMap | str | None = None):
        self.dtype, self.device = dtype, torch.device(device)
        self.requested = device_map
        self.map: dict[str, torch.device] = {}

    def bind(self, cfg: ModelConfig) -> Placement:
        """Resolve the device map for this model's layer count ("auto" needs it)."""
        device_map = self.requested
        if isinstance(device_map, str):
            device_map = auto_device_map(device_map, cfg.n_layers)
        self.map = {k: _as_device(v) for k, v in (device_map or {}).items()}
        return self

    def device_for(self, name: str) -> torch.device:
        parts = name.split(".")
        for n in range(len(parts), 0, -1):
            if (prefix := ".".join(parts[:n])) in self.map:
                return self.map[prefix]
        return self.device

    def __call__(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        keep_fp32 = is_norm_param(name)
        dtype = torch.float32 if keep_fp32 or not tensor.is_floating_point() else self.dtype
        return tensor.to(device=self.device_for(name), dtype=dtype).contiguous()


def _as_device(value) -> torch.device:
    return torch.device(f"cuda:{value}" if isinstance(value, int) else value)


def auto_device_map(kind: str, n_layers: int, n_devices: int | None = None) -> DeviceMap | None:
    """"auto": None (one device) unless several GPUs are visible; the blocks are then spread evenly, in
    order, the embedding on the first GPU and the final norm and unembedding on the last. (accelerate
    balances by free memory; equal shares of equal blocks come to the same on equal GPUs.)"""
    if kind != "auto":
        raise InvalidInputError(f"Unknown device map {kind!r}; pass a dict of module prefixes to devices, or 'auto'.")
    if n_devices is None:
        n_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_devices < 2:
        return None
    out: DeviceMap = {"embed": 0, "pos_embed": 0, "ln_final": n_devices - 1, "unembed": n_devices - 1}
    for layer in range(n_layers):
        out[f"blocks.{layer}"] = layer * n_devices // n_layers
    return out


def _expected_names(cfg: ModelConfig) -> set[str]:
    from interp.model.convert import _expected_names as names

    return names(cfg)


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


def _build(cfg: ModelConfig, tensors: Iterable[tuple[str, torch.Tensor]], tokenizer) -> Transformer:
    """The model on "meta" (no memory), then each tensor assigned as it comes, already placed. A folder a
    processed model was exported to carries its unembedding bias, which needs the processed unembedding."""
    from interp.model.processing import ProcessedUnembed, processing_of

    state = dict(tensors)
    with torch.device("meta"):
        model = Transformer(cfg, tokenizer)
        if "unembed.b_U" in state:
            model.unembed = ProcessedUnembed(torch.empty(cfg.d_vocab, cfg.d_model), torch.empty(cfg.d_vocab))
    model.load_state_dict(state, strict=True, assign=True)
    model.processing = processing_of(model)
    return model.eval()


def _complete_entry(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() and (folder / "interp_config.json").is_file()


def _write_cache(target: Path, cfg: ModelConfig, state: dict[str, torch.Tensor], tokenizer, source: str,
                 sha: str) -> None:
    """Write atomically: a half-written cache entry must never be read back. Always fp32, whatever the
    dtype of this load."""
    from safetensors.torch import save_file

    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"))
        (tmp / "interp_config.json").write_text(json.dumps({**cfg.to_dict(), "source": source, "sha256": sha}))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        try:
            os.replace(tmp, target)
        except OSError:
            if not _complete_entry(target):  # else another process decoding the same file finished first
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)  # a cache we cannot write is only slower, not wrong
        from interp.diskcache import warn_once

        warn_once("weights-cache", f"the weights cache {target.parent} cannot be written ({exc.strerror or exc}); "
                  "the model is decoded again next time.")


# -- Hugging Face directories -------------------------------------------------------------------------
def read_hf_config(path: Path):
    """config.json parsed by transformers' own config class (no network), text part of multimodal wrappers."""
    from transformers import AutoConfig

    try:
        hf = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except ValueError as exc:
        model_type = _json(path / "config.json").get("model_type")
        raise CorruptModelError(f"Model type {model_type!r} is not supported; interp reads {supported()}.") from exc
    except Exception as exc:  # noqa: BLE001 - json errors, missing fields, ...
        raise CorruptModelError(f"{path / 'config.json'} cannot be read as a transformers config: {exc}.") from exc
    return hf


def config_from_hf(hf, name: str) -> tuple[ModelConfig, Family]:
    family = family_of(hf.model_type)
    check_config(hf, family)
    try:
        fields = family.fields(hf)
        cfg = ModelConfig(name=name, architecture=hf.model_type, bos_token_id=hf.bos_token_id,
                          eos_token_id=_first(hf.eos_token_id), pad_token_id=hf.pad_token_id, **fields)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise CorruptModelError(f"The {family.name} config cannot be used: {exc}.") from exc
    return cfg, family


def _first(x):
    return x[0] if isinstance(x, list) else x


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CorruptModelError(f"{path} is not readable JSON: {exc}.") from exc


def _safetensors_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(_json(index).get("weight_map", {}).values()))
        missing = [s for s in shards if not (path / s).exists()]
        if missing:
            raise CorruptModelError(f"{path} lacks the shard {missing[0]} that its index names.")
        return [path / s for s in shards]
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise CorruptModelError(f"{path} has no .safetensors weights.")
    return files


def load_hf_dir(path: Path, name: str | None = None, dtype: torch.dtype = torch.float32,
                device: str | torch.device = "cpu", device_map: DeviceMap | None = None) -> Transformer:
    """A directory with config.json (or interp_config.json from our cache) and *.safetensors files, read one
    tensor at a time straight to its dtype and device."""
    from interp.model.convert import Reader, hf_tensors

    path = Path(path)
    place = Placement(dtype, device, device_map)
    reader = Reader(_safetensors_files(path))
    tokenizer = _dir_tokenizer(path)
    ours = path / "interp_config.json"
    if ours.exists():
        cfg = ModelConfig.from_dict(_json(ours))
        cfg = cfg.replace(name=name) if name else cfg
        place.bind(cfg)
        names = _expected_names(cfg) | ({"unembed.b_U"} if reader.has("unembed.b_U") else set())  # a processed export
        return _build(cfg, ((n, place(n, reader(n))) for n in sorted(names)), tokenizer)
    if not (path / "config.json").exists():
        raise CorruptModelError(f"{path} has no config.json.")
    hf = read_hf_config(path)
    prefixes, ignore = ("",), ()
    if hf.model_type == "gemma3":  # the multimodal wrapper: its text model, without the vision tower
        hf = hf.get_text_config()
        prefixes = ("", "model.language_model.", "language_model.")
        ignore = ("vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector.")
    cfg, family = config_from_hf(hf, name or path.name)
    place.bind(cfg)
    reader.prefixes = prefixes
    if tokenizer is not None:
        cfg = cfg.replace(default_prepend_bos=_tokenizer_adds_bos(tokenizer, cfg.bos_token_id))
    tensors = hf_tensors(cfg, family.layout, reader, family.norm_plus_one, place, ignore)
    return _build(cfg, tensors, tokenizer)


def _tokenizer_adds_bos(tokenizer, bos: int | None) -> bool:
    """Whether the folder's tokenizer puts BOS in front by itself: interp's default follows it."""
    if bos is None:
        return False
    try:
        ids = tokenizer("a")["input_ids"]
    except Exception:  # noqa: BLE001 - a tokenizer that cannot encode is reported when it is used
        return True
    return bool(ids) and ids[0] == bos


def _dir_tokenizer(path: Path):
    if not any((path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CorruptModelError(f"The tokenizer in {path} cannot be built: {exc}.") from exc
