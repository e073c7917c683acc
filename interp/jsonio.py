"""The one JSON serialiser of interp: analysis outputs, CLI `--json`, summary.json, the report manifest.

Everything becomes plain JSON: numpy/torch scalars and arrays, DataFrames (a list of records), tuples,
paths and frozen dataclasses are converted; a NaN or an infinity becomes ``null`` (JSON has no NaN, and
``json.dumps`` would otherwise write the invalid token ``NaN``); anything else unknown becomes its ``str``.
`dumps` refuses NaN (``allow_nan=False``), so nothing that slips past the conversion is written silently.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """`obj` as plain JSON data (dict, list, str, int, float, bool, None), NaN and infinities as None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # a DataFrame
        return to_jsonable(obj.to_dict(orient="records"))
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalar
        return to_jsonable(obj.item())
    if hasattr(obj, "tolist"):
        return to_jsonable(obj.tolist())
    return str(obj)


def dumps(obj: Any, indent: int | None = 2) -> str:
    """Plain-JSON text of `obj` (see `to_jsonable`); never writes NaN."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a text file so that a reader (or a run killed half-way) sees the old file or the new one, never
    half of one: a temporary file in the same folder (created with O_EXCL, never through a symlink), then
    renamed over the target. A symlink at the target is replaced, not followed."""
    import os
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)  # O_CREAT | O_EXCL, mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """`dumps(obj)` written atomically (see `write_text_atomic`)."""
    return write_text_atomic(path, dumps(obj, indent))


def read_jsonl_by(path: str | Path, key: str) -> dict:
    """A resumable run's parts file (one JSON object a line) as {line[key]: line}, the last line of a key
    winning; {} when the file is not there yet."""
    path = Path(path)
    if not path.is_file():
        return {}
    done = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            done[rec[key]] = rec
    return done
