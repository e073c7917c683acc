"""Run experiments with a result cache, so an interrupted report resumes and `--force` recomputes.

Each experiment's output is *materialised* into a folder: ``summary.md``, ``summary.json``,
``findings.json``, one CSV per table, PNG figures under ``figures/``, optional ``viewer.json`` (attention-viewer data) and ``run.json``
(what produced it). That folder is the cache entry; it lives under

    <cache_dir>/experiments/<model hash[:16]>/<experiment>/<key[:16]>/

with ``key = sha256(model hash, analysis, resolved parameters, seed, format version)``. An entry is written
to a temporary sibling and renamed into place only when complete, so an interrupted run never leaves a
half entry that a later run would trust.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp.fingerprint import text_hash, weights_checksum, weights_hash
from interp.jsonio import to_jsonable, write_json
from interp.progress import tqdm_progress
from interp.report.specs import ExperimentSpec, build_params, import_object, load_inputs

FORMAT_VERSION = 2  # bump when the materialised layout changes: old entries are then recomputed (2: findings.json)


@dataclass
class ExperimentRun:
    """One experiment's materialised output and how it was obtained."""

    spec: ExperimentSpec
    status: str  # "computed" | "cached" | "failed" | "disabled"
    folder: Path | None = None
    key: str = ""
    params: dict = field(default_factory=dict)
    seconds: float = 0.0  # compute time of the run that produced the output (from run.json when cached)
    wall_seconds: float = 0.0  # time spent on it in this invocation
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("computed", "cached")


def params_dict(params: Any) -> dict:
    """Resolved parameters (defaults included) as plain JSON data."""
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        params = dataclasses.asdict(params)
    return to_jsonable(params)


def cache_key(model_hash: str, spec: ExperimentSpec, params: dict, inputs: dict | None = None) -> str:
    payload = {"format": FORMAT_VERSION, "model": model_hash, "analysis": spec.analysis,
               "params_class": spec.params_class, "params": params, "seed": spec.seed, "inputs": inputs or {}}
    return text_hash(json.dumps(payload, sort_keys=True))


def cache_root() -> Path:
    from interp.model.registry import cache_dir

    return cache_dir() / "experiments"


def entry_dir(model_hash: str, spec: ExperimentSpec, key: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / model_hash[:16] / spec.name / key[:16]


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def materialise(result: Any, folder: Path) -> dict:
    """Write the result into folder (summary.md, summary.json, findings.json, tables, figures; see
    `interp.analysis.result.ResultBase.write`) plus the attention viewer's data; return what was written."""
    written = result.write(folder)
    viewer = getattr(result, "attention_viewer", None)
    if callable(viewer):
        viewer = viewer()
    if viewer:
        write_json(folder / "viewer.json", viewer, indent=None)
    return {**written, "viewer": bool(viewer)}


def read_run(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def run_experiment(model, model_name: str, spec: ExperimentSpec, force: bool = False, progress: bool = True,
                   root: Path | None = None, model_hash: str | None = None) -> ExperimentRun:
    """Run one experiment, or reuse its cache entry when model, parameters and seed are unchanged (`force`:
    recompute). `model_hash`: `interp.fingerprint.weights_hash(model)` when the caller has it already."""
    start = time.perf_counter()
    if not spec.enabled:
        return ExperimentRun(spec, "disabled", error=spec.disabled_reason or "disabled in its spec")
    to_params, kwargs, inputs = load_inputs(spec)
    params = build_params(spec, model_name, to_params)
    resolved = params_dict(params)
    for name in to_params:  # loaded data is keyed by its file's hash, not spelled out in run.json
        resolved[name] = f"<{len(to_params[name])} items from {spec.inputs[name]['path']}>"
    model_hash = model_hash or weights_hash(model)
    key = cache_key(model_hash, spec, resolved, inputs)
    folder = entry_dir(model_hash, spec, key, root)
    if not force and (folder / "run.json").exists():
        info = read_run(folder)
        return ExperimentRun(spec, "cached", folder, key, resolved, info.get("seconds", 0.0),
                             time.perf_counter() - start)
    function = import_object(spec.analysis, spec)
    before = weights_checksum(model)
    seed_everything(spec.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    result = function(model, params, progress=tqdm_progress(progress), **kwargs)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    result.command = spec.run_command(model_name)  # what reproduces these numbers exactly (same cache key)
    if weights_checksum(model) != before:
        raise RuntimeError(f"Experiment {spec.name} left the model's weights changed; it must restore them.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=folder.parent))
    try:
        written = materialise(result, tmp)
        info = {"experiment": spec.name, "title": spec.title, "analysis": spec.analysis, "model": model_name,
                "model_hash": model_hash, "key": key, "seed": spec.seed, "params": resolved, "inputs": inputs,
                "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **written}
        write_json(tmp / "run.json", info)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExperimentRun(spec, "computed", folder, key, resolved, seconds, time.perf_counter() - start)


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["interp", "torch", "transformers", "transformer-lens", "gguf", "numpy", "pandas", "matplotlib",
             "click", "tqdm", "safetensors"]
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def environment() -> dict:
    import platform

    import torch

    return {"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "packages": package_versions()}
