"""`interp run EXPERIMENT` and `interp report`: experiments from experiments/*.toml, cached and resumable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from cli.common import emit, load_model_for_cli, model_options, output_options, prepare_out

experiments_option = click.option(
    "--experiments", "experiments_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder of experiment specs (default: the repository's experiments/).")
recompute_option = click.option("--recompute", is_flag=True,
                                help="Recompute instead of reusing cached results for the same parameters.")


def _specs(experiments_dir: Path | None):
    from interp.report.specs import load_specs

    return load_specs(experiments_dir)


@click.command("run")
@click.argument("experiment")
@model_options
@recompute_option
@experiments_option
@output_options
def run(experiment: str, model: str, device: str, dtype: str, recompute: bool, experiments_dir: Path | None,
        as_json: bool, out: Path | None, force: bool, no_progress: bool) -> None:
    """Run one EXPERIMENT (a spec in experiments/) on a model; reuse its cached result unless --recompute.

    \b
    Example:
      interp run induction --model smollm2-135m --out induction-results
    """
    from interp.errors import InvalidInputError
    from interp.report.runner import run_experiment
    from interp.report.specs import select

    spec = select(_specs(experiments_dir), [experiment])[0]
    if not spec.enabled:
        raise InvalidInputError(f"Experiment {spec.name} is disabled: {spec.disabled_reason or 'see its spec'}.")
    out = prepare_out(out, force)
    m = load_model_for_cli(model, device, dtype)
    result = run_experiment(m, model, spec, force=recompute, progress=not no_progress)
    if out is not None:
        shutil.copytree(result.folder, out, dirs_exist_ok=True)
    where = out or result.folder
    how = "reused from cache" if result.status == "cached" else "computed"
    summary = (result.folder / "summary.md").read_text().strip()
    human = f"{summary}\n\n{spec.title}: {how} ({result.seconds:.1f} s); files in {where}\nReproduce: {spec.run_command(model)}"
    emit({"experiment": spec.name, "status": result.status, "seconds": result.seconds, "folder": str(where),
          "key": result.key, "summary": json.loads((result.folder / "summary.json").read_text())}, as_json, human)


@click.command("report")
@model_options
@recompute_option
@click.option("--only", default=None, help="Comma-separated experiment names to run and include.")
@experiments_option
@output_options
def report(model: str, device: str, dtype: str, recompute: bool, only: str | None, experiments_dir: Path | None,
           as_json: bool, out: Path | None, force: bool, no_progress: bool) -> None:
    """Run every experiment (reusing cached ones) and write index.html, report.md and the data.

    The report goes to OUT/<model>/ (OUT defaults to reports/). A folder of interp's own report is refreshed;
    any other non-empty folder is refused unless --force.

    \b
    Example:
      interp report --model smollm2-135m --only induction,trace
    """
    from interp.errors import InterpError
    from interp.report.pipeline import check_owned, make_report, report_name
    from interp.report.specs import select

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    every = _specs(experiments_dir)
    specs = select(every, names)
    root = out or Path("reports")
    folder = root / report_name(model)
    if not force:
        check_owned(folder)  # before the model loads: fail fast
    m = load_model_for_cli(model, device, dtype)
    command = f"interp report --model {model}" + (f" --out {root}" if out is not None else "") + \
        (f" --only {','.join(s.name for s in specs)}" if names else "")
    try:
        outcome = make_report(m, model, specs, folder, force=recompute, progress=not no_progress,
                              echo=lambda s: click.echo(s, err=True), command=command,
                              not_selected=[s for s in every if s not in specs], overwrite=force)
    except KeyboardInterrupt:
        click.echo("Stopped. Finished experiments are cached: run the same command again to resume"
                   + (" (without --recompute)." if recompute else "."), err=True)
        raise
    manifest = json.loads((outcome.folder / "manifest.json").read_text())
    emit({"folder": str(outcome.folder), "seconds": outcome.seconds,
          "experiments": [{k: e.get(k) for k in ("name", "status", "seconds", "key", "error")}
                          for e in manifest["experiments"]]},
         as_json, f"Report: {outcome.folder / 'index.html'} (and report.md) in {outcome.seconds:.0f} s")
    if outcome.failed:
        names = ", ".join(r.spec.name for r in outcome.failed)
        raise InterpError(f"{len(outcome.failed)} experiment(s) failed ({names}); the report shows the rest and "
                          f"{outcome.folder / 'errors.log'} has the details.")
