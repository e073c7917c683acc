"""`run` and `report` on workers: one shard per (model, experiment).

A worker runs the experiment through the report's own runner (`run_experiment`: its result cache, its
run.json), then sends the cache entry's files back, so the driver's cache holds them even when the worker
ran on another machine. The report is then assembled on the driver by `make_report`, which takes each
experiment's outcome from here instead of running it. A failed experiment comes back as its exception
(and the worker's traceback), so the report records the failure exactly as in the serial run.
"""

from __future__ import annotations

import traceback
from pathlib import Path


class RemoteTraceback(Exception):
    """The worker's traceback of a failed experiment (the cause of the exception raised on the driver)."""


def experiment_shard(model, payload, state) -> dict:
    from interp.fingerprint import weights_hash
    from interp.report.runner import cache_root, run_experiment

    model_name, spec, recompute = payload
    if "model_hash" not in state:  # once per worker: its weights are put back after every shard
        state["model_hash"] = weights_hash(model)
    try:
        run = run_experiment(model, model_name, spec, recompute=recompute, progress=False,
                             model_hash=state["model_hash"])
    except Exception as exc:  # noqa: BLE001 - the report records failures per experiment
        return {"error": exc, "traceback": traceback.format_exc()}
    files = {}
    if run.folder is not None:
        files = {str(p.relative_to(run.folder)): p.read_bytes() for p in sorted(run.folder.rglob("*")) if p.is_file()}
        rel = str(run.folder.relative_to(cache_root()))
    else:
        rel = None
    run.folder = None
    return {"run": run, "entry": rel, "files": files}


def land(output: dict, root: Path | None = None):
    """The ExperimentRun on the driver: its entry written into the driver's cache unless already there."""
    import os
    import shutil
    import tempfile

    from interp.report.runner import cache_root

    if "error" in output:
        raise output["error"] from RemoteTraceback(output["traceback"])
    run = output["run"]
    if output["entry"] is None:
        return run
    folder = (root or cache_root()) / output["entry"]
    if not (folder / "run.json").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".landing-", dir=folder.parent))
        try:
            for rel, data in output["files"].items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(data)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    run.folder = folder
    return run


def run_experiments(sweep, model_name: str, specs: list, recompute: bool) -> dict:
    """{spec name: the worker's output} for every enabled spec, in spec order (`recompute`: ignore cached results)."""
    enabled = [s for s in specs if s.enabled]
    shards = [((model_name, s.name), (model_name, s, recompute)) for s in enabled]
    outputs = sweep.map(f"{__name__}:experiment_shard", shards, model_name)
    return {s.name: out for s, out in zip(enabled, outputs)}
