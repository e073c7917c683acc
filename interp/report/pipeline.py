"""One call from model to report folder: run (or reuse) every experiment, copy outputs, manifest, render.

    reports/<model>/
      index.html  report.md  manifest.json  errors.log (only if something failed)
      <experiment>/summary.md summary.json *.csv figures/*.png [viewer.json] run.json

A report folder is interp's when it holds the marker file ``.interp-report`` (written the moment interp
creates or adopts the folder, before anything else) or a manifest with ``"generator": "interp report"``
(reports written before the marker existed). interp writes only into an empty folder or one of its own, so
nothing a user saved elsewhere is overwritten, and it removes only what it wrote there: an experiment's
folder is replaced only when it holds interp's ``run.json``.

Never losing work: every experiment's result is in the cache before anything is published; each is
published by copying into a temporary sibling and renaming it into place; the manifest, report.md and
index.html are written to a temporary file and renamed. A run killed at any point leaves a folder that
the next run recognises, sweeps (``.tmp-*``, ``.old-*``) and completes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from interp.errors import InterpError
from interp.fingerprint import config_dict, weights_hash
from interp.jsonio import write_json, write_text_atomic
from interp.report.runner import ExperimentRun, ModelChangedError, environment, read_run, run_experiment
from interp.report.specs import FULL_COMMAND, NAME, ExperimentSpec
from interp.report.status import StatusLine

GENERATOR = "interp report"
MARKER = ".interp-report"


@dataclass
class ReportOutcome:
    folder: Path
    runs: list[ExperimentRun]
    seconds: float

    @property
    def failed(self) -> list[ExperimentRun]:
        return [r for r in self.runs if r.status == "failed"]


def report_name(model_name: str) -> str:
    """Folder name for a model: the registered name, or a file/folder's stem, made filesystem-safe."""
    from interp.model.registry import MODELS

    name = model_name if model_name in MODELS else Path(model_name.rstrip("/")).stem or "model"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".")  # never "." or "..", never hidden
    return name or "model"


def is_owned(folder: Path) -> bool:
    """Whether the folder is one interp created for a report (marker, or an older report's manifest)."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    if (folder / MARKER).is_file() and not (folder / MARKER).is_symlink():
        return True
    try:
        return json.loads((folder / "manifest.json").read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def claim(folder: Path) -> None:
    """Create the folder (or adopt an empty one) and mark it as interp's before anything is written."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    if not marker.exists():
        marker.write_text("This folder is a report written by interp; interp may replace what it wrote here.\n")
    for stale in list(folder.glob(".tmp-*")) + list(folder.glob(".old-*")):  # a run killed while publishing
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def check_owned(folder: Path) -> None:
    """Refuse a non-empty folder that is not an interp report."""
    if folder.is_symlink():
        raise InterpError(f"{folder} is a symbolic link; give the report folder itself as --out.")
    if not folder.exists():
        return
    if not folder.is_dir():
        raise InterpError(f"{folder} exists and is not a folder; choose another --out.")
    if not any(folder.iterdir()):
        return
    if not is_owned(folder):
        raise InterpError(f"{folder} holds files that are not an interp report; choose another --out "
                          "(interp never overwrites files it did not write).")


def make_report(model, model_name: str, specs: list[ExperimentSpec], out_dir: Path, recompute: bool = False,
                progress: bool = True, echo: Callable[[str], None] = print, command: str | None = None,
                cache_root: Path | None = None, not_selected: list[ExperimentSpec] | None = None,
                overwrite: bool = False, run_one: Callable = run_experiment) -> ReportOutcome:
    """Run `specs` and write the report; `not_selected` specs (left out by --only) are listed as such.
    `recompute` recomputes cached experiments; `overwrite` writes even into a folder that is not an interp
    report. `run_one`: what runs one experiment (`run_experiment`'s signature; `interp.sweep` passes the
    workers'). index.html and report.md are rewritten after each experiment (the rest marked running or
    queued); manifest.json is written once, when the report is complete."""
    out_dir = Path(out_dir)
    every = list(specs) + list(not_selected or [])
    _check_out_dir(out_dir, every, overwrite)
    claim(out_dir)
    start = time.perf_counter()
    model_hash = weights_hash(model)  # once: every experiment's cache key and the manifest use it
    page = _Page(out_dir, every, model_name, {
        "generator": GENERATOR, "command": command or f"interp report --model {model_name}",
        "model": {"name": model_name, "hash": model_hash, "config": config_dict(model)},
        "environment": environment(), **_profile(every)}, start)
    for spec in not_selected or []:
        page.set(record(spec, model_name, "not selected", error="left out of this report by --only; run "
                        f"{spec.run_command(model_name)} to add it"))
    status = StatusLine(specs) if progress else None
    page.render()  # something to open at once: every experiment queued
    echo(f"Report: {out_dir / 'index.html'} (rewritten after each experiment; open it now)")
    runs, errors = _run_specs(model, model_name, specs, run_one, status.echo(echo) if status else echo, page,
                              status, recompute=recompute, root=cache_root, model_hash=model_hash)
    log = out_dir / "errors.log"
    if errors:
        write_text_atomic(log, "\n".join(errors))
    elif log.exists() and not log.is_symlink():
        log.unlink()
    total = time.perf_counter() - start
    write_json(out_dir / "manifest.json", page.manifest())
    from interp.report.render import render_report

    render_report(out_dir)
    return ReportOutcome(out_dir, runs, total)


def _profile(specs: list[ExperimentSpec]) -> dict:
    """The manifest's profile: "demo" (and the full protocol's command) when any spec runs at demo size."""
    if any(s.profile == "demo" for s in specs):
        return {"profile": "demo", "full_command": FULL_COMMAND}
    return {"profile": "full"}


class _Page:
    """The report being written: one record per experiment (queued until it runs), rendered on every change."""

    def __init__(self, out_dir: Path, specs: list[ExperimentSpec], model_name: str, head: dict, start: float):
        self.out_dir, self.head, self.start = out_dir, head, start
        ordered = sorted(specs, key=lambda s: (s.order, s.name))
        self.records = {s.name: record(s, model_name, "queued") for s in ordered}

    def set(self, rec: dict) -> None:
        self.records[rec["name"]] = rec

    def manifest(self) -> dict:
        return {**self.head, "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "total_seconds": round(time.perf_counter() - self.start, 2), "experiments": list(self.records.values())}

    def render(self) -> None:
        """index.html and report.md as they stand (the manifest waits for the end: it marks a complete report)."""
        from interp.report.render import render_html, render_markdown

        manifest = self.manifest()
        write_text_atomic(self.out_dir / "report.md", render_markdown(self.out_dir, manifest))
        write_text_atomic(self.out_dir / "index.html", render_html(self.out_dir, manifest))


def _check_out_dir(out_dir: Path, specs: list[ExperimentSpec], overwrite: bool) -> None:
    """Refuse a report folder interp does not own (unless overwrite), a symbolic link as the folder, and any
    experiment folder in it that interp did not write."""
    if not overwrite:
        check_owned(out_dir)
    elif out_dir.is_symlink():
        raise InterpError(f"{out_dir} is a symbolic link; give the report folder itself as --out.")
    for spec in specs:
        check_name(spec.name)
        target = out_dir / spec.name
        if (target.exists() or target.is_symlink()) and not _ours(target):
            raise InterpError(f"{target} exists and was not written by interp; move it away or choose another --out "
                              "(interp never removes what it did not write).")


def _run_specs(model, model_name: str, specs: list[ExperimentSpec], run_one: Callable, echo: Callable[[str], None],
               page: _Page, status: StatusLine | None, **kwargs) -> tuple[list[ExperimentRun], list[str]]:
    """Run each spec in turn (run_one(model, model_name, spec, **kwargs)), echoing one line per step and
    publishing each into the page as it ends; a failed experiment is recorded (its traceback in the returned
    errors) and the rest still run."""
    runs: list[ExperimentRun] = []
    errors: list[str] = []
    for i, spec in enumerate(specs, 1):
        label = f"[{i}/{len(specs)}] {spec.name}"
        if status is not None:
            status.begin(spec)
        if not spec.enabled:
            echo(f"{label}: skipped ({spec.disabled_reason or 'disabled in its spec'})")
        else:
            page.set(record(spec, model_name, "running"))
            page.render()
            echo(f"{label}: {spec.title}..." + (status.eta() if status is not None else ""))
        try:
            # the analysis' loops move the live line; without a terminal they stay quiet (no bars in a log)
            inner = status.progress if status is not None and status.live else False
            run = run_one(model, model_name, spec, progress=inner, **kwargs)
        except (KeyboardInterrupt, ModelChangedError):
            page.set(record(spec, model_name, "stopped", error="the run stopped here; run the same command to "
                            "resume (finished experiments are reused)"))
            page.render()
            raise  # a changed model: nothing after it can be trusted, the report stops here
        except Exception as exc:  # noqa: BLE001 - one failed experiment must not lose the others
            message = str(exc) if isinstance(exc, InterpError) else f"{type(exc).__name__}: {exc}"
            errors.append(f"== {spec.name}\n{traceback.format_exc()}")
            run = ExperimentRun(spec, "failed", error=message.splitlines()[0] if message else type(exc).__name__)
        if status is not None:
            status.end(spec, run.status == "computed")
        _say(echo, label, run)
        runs.append(run)
        page.set(_publish(run, page.out_dir, model_name))
        page.render()
    return runs, errors


def _say(echo: Callable[[str], None], label: str, run: ExperimentRun) -> None:
    if run.status == "failed":
        echo(f"{label}: FAILED: {run.error}")
    elif run.status == "computed":
        echo(f"{label}: done in {run.seconds:.1f} s")
    elif run.status == "cached":
        echo(f"{label}: reused from cache (computed in {run.seconds:.1f} s; --recompute recomputes)")


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise InterpError(f"Experiment name {name!r} may hold only letters, digits, '_' and '-'.")


def _ours(target: Path) -> bool:
    """An experiment folder interp published (a real folder holding interp's run.json)."""
    return target.is_dir() and not target.is_symlink() and (target / "run.json").is_file()


def _publish(run: ExperimentRun, out_dir: Path, model_name: str) -> dict:
    """Copy a finished experiment's cache entry into the report folder; its manifest record."""
    spec = run.spec
    rec = record(spec, model_name, run.status, error=run.error)
    rec["wall_seconds"] = round(run.wall_seconds, 2)
    if not run.ok:
        return rec
    check_name(spec.name)
    target = out_dir / spec.name
    if (target.exists() or target.is_symlink()) and not _ours(target):
        raise InterpError(f"{target} exists and was not written by interp; move it away (interp never removes "
                          "what it did not write).")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{spec.name}-", dir=out_dir))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a published folder is as readable as the rest of the report
    shutil.copytree(run.folder, tmp, dirs_exist_ok=True, symlinks=True)
    if target.exists():  # our older copy of this experiment: moved aside, then removed
        old = Path(tempfile.mkdtemp(prefix=f".old-{spec.name}-", dir=out_dir))
        os.replace(target, old / spec.name)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    info = read_run(run.folder)
    rec.update({"folder": spec.name, "key": run.key, "params": info.get("params", run.params),
                "git_commit": info.get("git_commit") or (git_version() if run.status == "computed" else None),
                "seconds": info.get("seconds", run.seconds), "cpu_seconds": info.get("cpu_seconds"),
                "computed_at": info.get("finished"), "figures": info.get("figures", []),
                "tables": info.get("tables", [])})
    return rec


def git_version(root: Path | None = None) -> str | None:
    """The git commit of the code that runs (``<sha>``, ``<sha>+dirty`` when tracked files under ``interp/``
    differ from it), or None outside a git checkout: what each published result records as its code version
    beside run.json's source hash."""
    import subprocess

    root = root or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "interp"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha or None


def record(spec: ExperimentSpec, model_name: str, status: str, error: str = "") -> dict:
    """An experiment's manifest record before its results are in (status, commands, demo sizes)."""
    rec = {"name": spec.name, "title": spec.title, "status": status, "analysis": spec.analysis,
           "seed": spec.seed, "description": spec.description, "captions": spec.captions,
           "findings": list(spec.findings), "run_command": spec.run_command(model_name),
           "cli_command": spec.cli_command(model_name), "wall_seconds": 0.0, "error": error, "folder": None}
    changes = spec.demo_changes(model_name)
    if changes:
        rec["demo"] = {"changes": {k: list(v) for k, v in changes.items()}, "note": spec.demo.get("note", "")}
    return rec
