"""`interp run EXPERIMENT` and `interp report`: experiments from experiments/*.toml, cached and resumable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from cli.common import emit, load_model_for_cli, model_options, output_options, prepare_out, sweep_options

experiments_option = click.option(
    "--experiments", "experiments_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder of experiment specs (default: the repository's experiments/).")
recompute_option = click.option("--recompute", is_flag=True,
                                help="Recompute instead of reusing cached results for the same parameters.")
demo_option = click.option("--demo", is_flag=True,
                           help="The demo profile: smaller samples (each spec's [demo]) so the whole report runs in "
                                "minutes; every affected finding says so. Reports go to reports/demo/.")
DEMO_ROOT = Path("reports") / "demo"  # ignored by git: a demo never replaces the committed full reports


def _specs(experiments_dir: Path | None, demo: bool = False):
    from interp.report.specs import load_specs

    return load_specs(experiments_dir, profile="demo" if demo else "full")


@click.command("run")
@click.argument("experiment")
@model_options
@recompute_option
@demo_option
@experiments_option
@output_options
@sweep_options
def run(experiment: str, model: str, device: str, dtype: str, recompute: bool, demo: bool,
        experiments_dir: Path | None, as_json: bool, out: Path | None, force: bool, no_progress: bool,
        workers: int | None = None, ray_address: str | None = None) -> None:
    """Run one EXPERIMENT (a spec in experiments/) on a model; reuse its cached result unless --recompute.

    \b
    Example:
      interp run induction --model smollm2-135m --out induction-results
    """
    from interp.errors import InvalidInputError
    from interp.report.runner import run_experiment
    from interp.report.specs import select

    spec = select(_specs(experiments_dir, demo), [experiment])[0]
    if not spec.enabled:
        raise InvalidInputError(f"Experiment {spec.name} is disabled: {spec.disabled_reason or 'see its spec'}.")
    out = prepare_out(out, force)
    if workers is not None or ray_address:  # the experiment runs on a Ray worker (interp.sweep)
        from interp.sweep.cli import report_runs
        from interp.sweep.tasks.report import land

        opts = {"workers": workers, "ray_address": ray_address, "device": device, "dtype": dtype,
                "no_progress": no_progress}
        result = land(report_runs(opts, model, [spec], recompute)[spec.name])
    else:
        m = load_model_for_cli(model, device, dtype)
        result = run_experiment(m, model, spec, recompute=recompute, progress=not no_progress)
    if out is not None:
        shutil.copytree(result.folder, out, dirs_exist_ok=True)
    where = out or result.folder
    how = "reused from cache" if result.status == "cached" else "computed"
    summary = (result.folder / "summary.md").read_text().strip()
    human = (f"{summary}\n\n{spec.title}: {how} ({result.seconds:.1f} s); files in {where}\n"
             f"Reproduce: {spec.run_command(model)}")
    emit({"experiment": spec.name, "status": result.status, "seconds": result.seconds, "folder": str(where),
          "key": result.key, "summary": json.loads((result.folder / "summary.json").read_text())}, as_json, human)


@click.command("report")
@model_options
@recompute_option
@demo_option
@click.option("--only", default=None, help="Comma-separated experiment names to run and include.")
@experiments_option
@output_options
@sweep_options
def report(model: str, device: str, dtype: str, recompute: bool, demo: bool, only: str | None,
           experiments_dir: Path | None, as_json: bool, out: Path | None, force: bool, no_progress: bool,
           workers: int | None = None, ray_address: str | None = None) -> None:
    """Run every experiment (reusing cached ones) and write index.html, report.md and the data.

    The report goes to OUT/<model>/ (OUT defaults to reports/, or reports/demo/ with --demo); index.html is
    rewritten after each experiment, and one line on the terminal estimates the time left. A folder of
    interp's own report is refreshed; any other non-empty folder is refused unless --force. Several models
    (--model a,b) get one report each and OUT/comparison.html (and comparison.md) with their key figures side
    by side.

    \b
    Example:
      interp report --model smollm2-135m --only induction,trace
      interp report --model smollm2-135m --demo
      interp report --model smollm2-135m,gemma3-270m --workers 2
    """
    from interp.errors import InvalidInputError
    from interp.report.pipeline import check_owned, report_name
    from interp.report.specs import select

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    every = _specs(experiments_dir, demo)
    specs = select(every, names)
    root = out or (DEMO_ROOT if demo else Path("reports"))
    models = [m.strip() for m in model.split(",") if m.strip()]
    if not models or len(set(models)) != len(models):
        raise InvalidInputError(f"--model {model!r} must name one model or several different ones, comma-separated.")
    folders = [root / report_name(m) for m in models]
    _check_root(root, len(models) > 1, force)  # before any model loads: fail fast
    if not force:
        for folder in folders:
            check_owned(folder)
    opts = {"workers": workers, "ray_address": ray_address, "device": device, "dtype": dtype,
            "no_progress": no_progress}
    runtime = None
    if workers is not None or ray_address:
        from interp.sweep.cli import start_runtime

        runtime = start_runtime(opts)
    summaries, failed = [], []
    try:
        for name, folder in zip(models, folders):
            command = f"interp report --model {name}" + (" --demo" if demo else "") + \
                (f" --out {root}" if out is not None else "") + \
                (f" --only {','.join(s.name for s in specs)}" if names else "")
            outcome = _one_report(name, folder, specs, every, names, recompute, force, opts, runtime, command)
            summaries.append(_summary(outcome))
            if outcome.failed:
                failed.append((name, outcome))
    finally:
        if runtime is not None:
            runtime.close()
    _finish(root, models, folders, summaries, failed, as_json, force)


def _check_root(root: Path, comparison: bool, force: bool) -> None:
    """OUT itself is a folder, never a link; with several models, comparison.html and .md there may be
    replaced (interp's own, or anything with --force) and are never links."""
    from cli.common import check_out

    check_out(root)
    if comparison:
        from interp.report.compare import check_targets

        check_targets(root, overwrite=force)


def _finish(root: Path, models: list[str], folders: list[Path], summaries: list[dict], failed: list, as_json: bool,
            force: bool = False) -> None:
    """The comparison page (several models), the summary line(s) or JSON, and one sentence if any failed."""
    from interp.errors import InterpError

    comparison = None
    if len(models) > 1:
        from interp.report.compare import write_comparison

        comparison = write_comparison(root, folders, overwrite=force)[1]
    if len(models) == 1:
        data = summaries[0]
        human = f"Report: {folders[0] / 'index.html'} (and report.md) in {summaries[0]['seconds']:.0f} s"
    else:
        data = {"reports": summaries, "comparison": str(comparison)}
        human = "\n".join(f"Report: {Path(s['folder']) / 'index.html'} in {s['seconds']:.0f} s" for s in summaries) + \
            f"\nComparison: {comparison}"
    emit(data, as_json, human)
    if failed and len(models) == 1:
        outcome = failed[0][1]
        bad = ", ".join(r.spec.name for r in outcome.failed)
        raise InterpError(f"{len(outcome.failed)} experiment(s) failed ({bad}); the report shows the rest and "
                          f"{outcome.folder / 'errors.log'} has the details.")
    if failed:
        bad = "; ".join(f"{name}: {', '.join(r.spec.name for r in o.failed)}" for name, o in failed)
        logs = ", ".join(str(o.folder / "errors.log") for _, o in failed)
        raise InterpError(f"{sum(len(o.failed) for _, o in failed)} experiment(s) failed ({bad}); the report shows "
                          f"the rest and {logs} has the details.")


def _one_report(name, folder, specs, every, names, recompute, force, opts, runtime, command):
    """One model's report: its experiments on Ray workers when a runtime is given, else here."""
    from interp.report.pipeline import make_report

    run_one = {}
    if runtime is not None:
        from interp.sweep.cli import report_runs, runner_from

        run_one = {"run_one": runner_from(report_runs(opts, name, specs, recompute, runtime))}
    m = load_model_for_cli(name, opts["device"], opts["dtype"])
    try:
        return make_report(m, name, specs, folder, recompute=recompute, progress=not opts["no_progress"],
                           echo=lambda s: click.echo(s, err=True), command=command,
                           not_selected=[s for s in every if s not in specs], overwrite=force, **run_one)
    except KeyboardInterrupt:
        click.echo("Stopped. Finished experiments are cached: run the same command again to resume"
                   + (" (without --recompute)." if recompute else "."), err=True)
        raise


def _summary(outcome) -> dict:
    manifest = json.loads((outcome.folder / "manifest.json").read_text())
    return {"folder": str(outcome.folder), "seconds": outcome.seconds,
            "experiments": [{k: e.get(k) for k in ("name", "status", "seconds", "key", "error")}
                            for e in manifest["experiments"]]}
