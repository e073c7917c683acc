"""JSON is JSON (issue #15, item 8): the one serialiser writes null for NaN and infinities, in --json output
and in every summary.json, and refuses to write the invalid tokens NaN/Infinity."""

from __future__ import annotations

import json
import math

import pytest
from reliability_helpers import write_spec

from interp.jsonio import dumps
from interp.report import runner
from interp.report.specs import parse_spec


def strict_loads(text: str):
    def refuse(token):
        raise ValueError(f"invalid JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_dumps_writes_null_for_nan_and_infinity():
    import numpy as np
    import torch

    data = {"a": float("nan"), "b": [float("inf"), -math.inf], "c": np.float32("nan"), "d": torch.tensor(float("nan"))}
    assert strict_loads(dumps(data)) == {"a": None, "b": [None, None], "c": None, "d": None}
    with pytest.raises(ValueError):
        json.dumps(float("nan"), allow_nan=False)  # what dumps relies on for anything its conversion misses


def test_summary_json_of_an_experiment_is_strict_json(tmp_path, tiny, cache_env):
    spec = parse_spec(write_spec(tmp_path / "exp", "one", params='text = "x"'))
    run = runner.run_experiment(tiny, "tiny", spec, progress=False)
    summary = strict_loads((run.folder / "summary.json").read_text())
    assert summary["nan"] is None and summary["inf"] is None and summary["text"] == "x"
    strict_loads((run.folder / "run.json").read_text())
