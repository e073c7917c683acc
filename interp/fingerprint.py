"""Every hash interp takes of a model, its weights or its inputs, in one place.

- `weights_hash(model)`: the identity of a model's weights and config (blake2b over every parameter and
  buffer, tied tensors once), optionally leaving some weights out. The report keys its experiment cache on
  it; ROME keys its key statistics on it with the MLP output matrices left out (edits change only those, so
  statistics of the unedited model stay valid while edits are applied, as in the reference).
- `weights_checksum(model)`: a cheap check (one sum per tensor) that a run left the weights as it found them.
- `tensor_sha256(w)`: the base weights an edit was made for (stored in edit files, so its definition is
  part of the file format: sha256 of the float32 bytes).
- `ids_hash(docs)`: a corpus of token-id documents.

No hash is memoised on the model or in a module global: a caller that needs one many times computes it once
and passes it on (the report's `make_report`, ROME's `StatsCache`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence


def config_dict(model) -> dict:
    """The model's config as plain data (without the free-form `extra` field)."""
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        return {}
    d = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg))
    return {k: v for k, v in d.items() if k != "extra"}


def weights_hash(model, skip: Sequence[str] = (), digest_size: int = 32) -> str:
    """blake2b over the config and every tensor of `model.state_dict()` (names, shapes, dtypes, bytes),
    tensors whose name ends with one of `skip` left out; tied tensors are hashed once."""
    import torch

    h = hashlib.blake2b(digest_size=digest_size)
    h.update(json.dumps(config_dict(model), sort_keys=True, default=str).encode())
    seen: set[int] = set()
    for name, tensor in sorted(model.state_dict().items()):
        if any(name.endswith(s) for s in skip):
            continue
        h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        flat = tensor.detach().contiguous().cpu().reshape(-1)
        h.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return h.hexdigest()


def weights_checksum(model) -> tuple[float, ...]:
    """One float64 sum per tensor: cheap, and enough to notice weights a run forgot to restore."""
    import torch

    with torch.no_grad():
        return tuple(float(t.double().sum()) for _, t in sorted(model.state_dict().items()))


def tensor_sha256(w) -> str:
    """sha256 of a tensor's bytes as float32 on the CPU."""
    return hashlib.sha256(w.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()


def ids_hash(docs: Iterable[Sequence[int]]) -> str:
    """A short hash of token-id documents (their order and boundaries included)."""
    import numpy as np

    h = hashlib.sha256()
    for d in docs:
        h.update(np.asarray(d, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()[:16]


def text_hash(text: str) -> str:
    """sha256 (hex) of a string: cache keys built from a description of every input."""
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path) -> str:
    """sha256 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
