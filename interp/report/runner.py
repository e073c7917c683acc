"""Run experiments with a result cache, so an interrupted report resumes and `--recompute` recomputes.

Each experiment's output is *materialised* into a folder: ``summary.md``, ``summary.json``,
``findings.json``, one CSV per table, PNG figures under ``figures/``, optional ``viewer.json``
(attention-viewer data) and ``run.json`` (what produced it). That folder is the cache entry; it lives under

    <cache_dir>/experiments/<model hash[:16]>/<experiment>/<key[:16]>/

with ``key = sha256(model hash, analysis, resolved parameters, seed, format version, code version)``; the
code version is interp's version and a hash of the analysis' package and of the model, patching and
intervention code (`interp.diskcache.code_version`), so a result of older code is never reused silently.
An entry is written to a temporary sibling (``.tmp-*``) and renamed into place only when complete, so an
interrupted run never leaves a half entry that a later run would trust; two processes filling the same
entry at once both succeed (the second keeps the first's entry). A cache that cannot be written is
only slower: one warning, and the result is materialised in a private temporary folder instead.

The runner never trusts a mutated model: the weights are checked after every experiment, also one that
failed, and a changed model stops the run (`ModelChangedError`).
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

from interp.diskcache import code_version, module_of, scratch_dir, sweep_stale, warn_once
from interp.errors import InterpError
from interp.fingerprint import text_hash, weights_checksum, weights_hash
from interp.jsonio import to_jsonable, write_json
from interp.progress import Progress, tqdm_progress
from interp.report.specs import ExperimentSpec, build_params, import_object, load_inputs

FORMAT_VERSION = 2  # bump when the materialised layout changes: old entries are then recomputed (2: findings.json)
SHARED_CODE = ("interp.model", "interp.patching", "interp.interventions", "interp.analysis.result",
               "interp.fingerprint", "interp.report.runner")


class ModelChangedError(InterpError):
    """An experiment left the model's weights different from before: nothing after it can be trusted."""


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


def spec_code_version(spec: ExperimentSpec) -> str:
    """interp's version + a hash of the code that computes this experiment (see `interp.diskcache`)."""
    modules = {module_of(spec.analysis), *SHARED_CODE}
    if spec.params_class:
        modules.add(module_of(spec.params_class))
    modules.update(module_of(inp["loader"]) for inp in spec.inputs.values())
    return code_version(*modules)


def cache_key(model_hash: str, spec: ExperimentSpec, params: dict, inputs: dict | None = None) -> str:
    payload = {"format": FORMAT_VERSION, "model": model_hash, "analysis": spec.analysis,
               "params_class": spec.params_class, "params": params, "seed": spec.seed, "inputs": inputs or {},
               "code": spec_code_version(spec)}
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


def run_experiment(model, model_name: str, spec: ExperimentSpec, recompute: bool = False,
                   progress: bool | Progress = True, root: Path | None = None,
                   model_hash: str | None = None) -> ExperimentRun:
    """Run one experiment, or reuse its cache entry when model, parameters and seed are unchanged (unless
    `recompute`). `progress`: tqdm bars (True), none (False), or an `interp.progress` callable.
    `model_hash`: `interp.fingerprint.weights_hash(model)` when the caller has it already."""
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
    if not recompute and _complete(folder):
        try:
            info = read_run(folder)
        except (OSError, ValueError):
            info = None  # a damaged entry is recomputed, never trusted
        if info is not None:
            return ExperimentRun(spec, "cached", folder, key, resolved, info.get("seconds", 0.0),
                                 time.perf_counter() - start)
    function = import_object(spec.analysis, spec)
    before = weights_checksum(model)
    seed_everything(spec.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    failed = True
    try:
        bars = tqdm_progress(progress) if isinstance(progress, bool) else progress
        result = function(model, params, progress=bars, **kwargs)
        failed = False
    finally:
        if weights_checksum(model) != before:
            how = "failed and left" if failed else "left"
            raise ModelChangedError(f"Experiment {spec.name} {how} the model's weights changed, so the run stops "
                                    "here (an analysis must restore every weight it changes).")
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    result.command = spec.run_command(model_name)  # what reproduces these numbers exactly (same cache key)
    info = {"experiment": spec.name, "title": spec.title, "analysis": spec.analysis, "model": model_name,
            "model_hash": model_hash, "key": key, "code": spec_code_version(spec), "seed": spec.seed,
            "params": resolved, "inputs": inputs, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        folder = store(result, folder, info, replace=recompute)
    except OSError as exc:
        warn_once("experiment-cache", f"the experiment cache {folder.parent.parent.parent} cannot be written "
                  f"({exc.strerror or exc}); results are kept for this run only.")
        folder = scratch_dir() / spec.name
        folder.mkdir()
        _write_entry(result, folder, info)
    return ExperimentRun(spec, "computed", folder, key, resolved, seconds, time.perf_counter() - start)


def _complete(folder: Path) -> bool:
    try:
        return (folder / "run.json").is_file()
    except OSError:
        return False


def _write_entry(result: Any, folder: Path, info: dict) -> None:
    written = materialise(result, folder)
    write_json(folder / "run.json", {**info, **written})


def store(result: Any, folder: Path, info: dict, replace: bool = False) -> Path:
    """Materialise `result` into the cache entry `folder` atomically: a temporary sibling renamed into place.
    An entry that appeared meanwhile (another process filling the same key) is kept, ours discarded,
    unless `replace`; stale temporaries of killed runs are swept. OSError when the cache cannot be written."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(folder.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    try:
        os.chmod(tmp, 0o755)
        _write_entry(result, tmp, info)
        if replace and folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{folder.name}-", dir=folder.parent))
            try:
                os.replace(folder, old / "entry")
            except FileNotFoundError:
                pass  # another process replaced it first
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not _complete(folder):  # not a finished entry of a concurrent run: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


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
