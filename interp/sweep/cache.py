"""Finished shards on disk, so a sweep whose driver was killed resumes with only the missing shards.

    <cache_dir>/sweeps/<sweep key[:16]>/<shard key[:16]>.pkl     (INTERP_SWEEP_CACHE replaces <cache_dir>/sweeps)

The sweep key hashes what the whole sweep depends on (command, model, dtype, parameters, format); a shard
key hashes the shard's own description. Each file is written to a temporary name and renamed into place,
so a driver killed while writing never leaves a half shard that a rerun would trust. The files are
pickles written by interp itself for this user (read back only from this cache folder).
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from interp.fingerprint import text_hash
from interp.jsonio import to_jsonable

FORMAT = 1
MISSING = object()


def digest(obj: Any) -> str:
    """A stable hash of plain data (dataclasses, tuples, numbers, strings), through interp's JSON form."""
    return text_hash(json.dumps(to_jsonable(obj), sort_keys=True))


def sweeps_root() -> Path:
    """<INTERP_CACHE>/sweeps, or INTERP_SWEEP_CACHE when set (a private shard cache, weights cache kept)."""
    from interp.model.registry import cache_dir

    own = os.environ.get("INTERP_SWEEP_CACHE")
    return Path(own) if own else cache_dir() / "sweeps"


class ShardCache:
    """get/put of shard outputs under one sweep's folder; `root=None` keeps nothing (no cache)."""

    def __init__(self, sweep: Any, root: Path | None = None, enabled: bool = True):
        self.folder = (root or sweeps_root()) / digest({"format": FORMAT, "sweep": sweep})[:16] if enabled else None

    def path(self, shard: Any) -> Path | None:
        return None if self.folder is None else self.folder / f"{digest(shard)[:16]}.pkl"

    def get(self, shard: Any) -> Any:
        path = self.path(shard)
        if path is None or not path.exists():
            return MISSING
        try:
            with open(path, "rb") as fh:
                return pickle.load(fh)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            return MISSING  # unreadable (older code, disk trouble): computed again

    def put(self, shard: Any, value: Any) -> None:
        path = self.path(shard)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".shard-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def count(self) -> int:
        return 0 if self.folder is None or not self.folder.exists() else len(list(self.folder.glob("*.pkl")))
