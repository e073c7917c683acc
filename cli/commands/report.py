"""`interp run EXPERIMENT` and `interp report`: experiments from experiments/*.toml, cached and resumable."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from cli.common import emit, json_option, load_model_for_cli, model_option, prepare_out

experiments_option = click.option(
    "--experiments", "experiments_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder of experiment specs (default: the repository's experiments/).")
quiet_option = click.option("--no-progress", is_flag=True, help="No progress bars (log lines only).")


def _specs(experiments_dir: Path | None):
    from interp.report.specs import load_specs

    return load_specs(experiments_dir)


@click.command("run")
@click.argument("experiment")
@model_option
@click.option("--force", is_flag=True, help="Recompute even if a cached result for these parameters exists.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also copy the experiment's tables, figures and summaries into this (empty) folder.")
@experiments_option
@quiet_option
@json_option
def run(experiment: str, model: str, force: bool, out: Path | None, experiments_dir: Path | None,
        no_progress: bool, as_json: bool) -> None:
    """Run one EXPERIMENT (a spec in experiments/) on a model; reuse its cached result unless --force."""
    from interp.errors import InvalidInputError
    from interp.report.runner import run_experiment
    from interp.report.specs import select

    spec = select(_specs(experiments_dir), [experiment])[0]
    if not spec.enabled:
        raise InvalidInputError(f"Experiment {spec.name} is disabled: {spec.disabled_reason or 'see its spec'}.")
    out = prepare_out(out, False)
    m = load_model_for_cli(model)
    result = run_experiment(m, model, spec, force=force, progress=not no_progress)
    if out is not None:
        shutil.copytree(result.folder, out, dirs_exist_ok=True)
    where = out or result.folder
    how = "reused from cache" if result.status == "cached" else "computed"
    summary = (result.folder / "summary.md").read_text().strip()
    human = f"{summary}\n\n{spec.title}: {how} ({result.seconds:.1f} s); files in {where}\nReproduce: {spec.run_command(model)}"
    import json

    emit({"experiment": spec.name, "status": result.status, "seconds": result.seconds, "folder": str(where),
          "key": result.key, "summary": json.loads((result.folder / "summary.json").read_text())}, as_json, human)


@click.command("report")
@model_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
              show_default=True, help="Reports root; the report goes to OUT/<model>/.")
@click.option("--force", is_flag=True, help="Recompute every experiment instead of reusing cached results.")
@click.option("--only", default=None, help="Comma-separated experiment names to run and include.")
@experiments_option
@quiet_option
def report(model: str, out: Path, force: bool, only: str | None, experiments_dir: Path | None,
           no_progress: bool) -> None:
    """Run every experiment (reusing cached ones) and write OUT/<model>/index.html, report.md and data."""
    from interp.errors import InterpError
    from interp.report.pipeline import check_owned, make_report, report_name
    from interp.report.specs import select

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    every = _specs(experiments_dir)
    specs = select(every, names)
    folder = out / report_name(model)
    check_owned(folder)  # before the model loads: fail fast
    m = load_model_for_cli(model)
    command = f"interp report --model {model}" + (f" --out {out}" if out != Path("reports") else "") + \
        (f" --only {','.join(s.name for s in specs)}" if names else "")
    try:
        outcome = make_report(m, model, specs, folder, force=force, progress=not no_progress,
                              echo=lambda s: click.echo(s, err=True), command=command,
                              not_selected=[s for s in every if s not in specs])
    except KeyboardInterrupt:
        click.echo("Stopped. Finished experiments are cached: run the same command again to resume"
                   + (" (without --force)." if force else "."), err=True)
        raise
    click.echo(f"Report: {outcome.folder / 'index.html'} (and report.md) in {outcome.seconds:.0f} s")
    if outcome.failed:
        names = ", ".join(r.spec.name for r in outcome.failed)
        raise InterpError(f"{len(outcome.failed)} experiment(s) failed ({names}); the report shows the rest and "
                          f"{outcome.folder / 'errors.log'} has the details.")

