"""Plain-JSON conversion for analysis outputs (numpy/torch scalars and arrays, DataFrames, paths, NaN)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def to_jsonable(obj: Any) -> Any:
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
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # a DataFrame
        return to_jsonable(obj.to_dict(orient="records"))
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalar
        return to_jsonable(obj.item())
    if hasattr(obj, "tolist"):
        return to_jsonable(obj.tolist())
    return str(obj)
