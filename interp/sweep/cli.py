"""What the CLI calls with --workers / --ray-address: the analysis commands through `run_sharded`,
`interp report` through `report_on_workers`. Imported only when one of those options is given."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from interp.analysis.registry import ANALYSES

# the serial entry point's name -> the driver that runs the same analysis in shards (from the registry)
DRIVERS = {a.entry_name: a.sharded for a in ANALYSES.values() if a.sharded}


def wanted(opts: dict) -> bool:
    """Did the user ask for Ray (--workers or --ray-address / RAY_ADDRESS)?"""
    return opts.get("workers") is not None or bool(opts.get("ray_address"))


def model_identity(name: str) -> dict:
    """What the shard cache keys a model by: its registered name, or a file or folder with its size and time."""
    path = Path(name)
    if not path.exists():
        return {"name": name}
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {"path": str(path.resolve()), "files": [(str(p.relative_to(path)) if p != path else p.name,
                                                     p.stat().st_size, int(p.stat().st_mtime)) for p in files]}


def start_sweep(opts: dict, model: str, command: str, cache: bool = True, runtime=None):
    from interp.sweep.engine import Sweep
    from interp.sweep.worker import ModelSpec

    where = opts.get("ray_address") or f"a local Ray runtime with {opts.get('workers')} workers"
    click.echo(f"Loading {model} on {where}...", err=True)
    key = {"command": command, "model": model_identity(model), "device": opts["device"], "dtype": opts["dtype"]}
    return Sweep.start(ModelSpec(model, opts["device"], opts["dtype"]), workers=opts.get("workers"),
                       address=opts.get("ray_address"), key=key, cache=cache, progress=not opts["no_progress"],
                       runtime=runtime)


def serial_command(command: str) -> str:
    """The command without --workers / --ray-address: what reproduces the same numbers (the serial run's)."""
    import shlex

    words, out, skip = shlex.split(command), [], False
    for w in words:
        if skip:
            skip = False
        elif w in ("--workers", "--ray-address"):
            skip = True
        elif not w.startswith(("--workers=", "--ray-address=")):
            out.append(w)
    return " ".join(shlex.quote(w) for w in out)


def run_sharded(entry: Callable, params: Any, opts: dict, **kwargs) -> Any:
    """The result `entry(model, params, **kwargs)` returns, computed in shards on Ray workers."""
    from interp.errors import InterpError
    from interp.sweep.worker import resolve

    if entry.__name__ not in DRIVERS:
        raise InterpError(f"{entry.__name__} does not run on workers; drop --workers / --ray-address.")
    with start_sweep(opts, opts["model"], entry.__name__) as sweep:
        return resolve(DRIVERS[entry.__name__])(sweep, params, **kwargs)


def start_runtime(opts: dict):
    """One Ray runtime for several sweeps (`interp report` over several models); close it at the end."""
    from interp.sweep.runtime import start

    return start(opts.get("workers"), opts.get("ray_address"))


def report_runs(opts: dict, model: str, specs: list, recompute: bool, runtime=None) -> dict:
    """Every enabled experiment of `specs` on workers (`recompute`: ignore cached results): {spec name: worker
    output} (see tasks.report)."""
    from interp.sweep.tasks.report import run_experiments

    # no shard cache: the runner's own result cache already makes a rerun resume
    with start_sweep(opts, model, "report", cache=False, runtime=runtime) as sweep:
        return run_experiments(sweep, model, specs, recompute)


def runner_from(outputs: dict) -> Callable:
    """A stand-in for `run_experiment` that hands back what the workers computed."""
    from interp.sweep.tasks.report import land

    def run(model, model_name, spec, **_):
        from interp.report.runner import run_experiment

        if spec.name not in outputs:  # disabled specs: the runner says so without running anything
            return run_experiment(model, model_name, spec)
        return land(outputs[spec.name])

    return run


def local_env() -> None:
    """For tests and benchmarks: the environment a local runtime is started with (see runtime.LOCAL_ENV)."""
    from interp.sweep.runtime import LOCAL_ENV

    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
