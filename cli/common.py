"""What every command shares: options, model loading, JSON output, output folders, error handling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

DEFAULT_MODEL = "smollm2-135m"


def model_option(f):
    return click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True,
                        help="Registered model name, .gguf file or Hugging Face directory.")(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")(f)


def out_option(f):
    return click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Write tables, figures and a summary into this folder.")(f)


def seed_option(f):
    return click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")(f)


def force_option(f):
    return click.option("--force", is_flag=True, help="Overwrite files already in --out.")(f)


def load_model_for_cli(name: str, dtype: str = "float32"):
    """Load a model, telling the user on stderr (stdout stays clean for --json)."""
    from interp.model.load import load_model

    click.echo(f"Loading {name}...", err=True)
    return load_model(name, dtype=dtype)


def prepare_out(out: Path | None, force: bool = False) -> Path | None:
    """Create --out; refuse to write into a folder that already holds files unless --force."""
    from interp.errors import InterpError

    if out is None:
        return None
    if out.exists() and any(out.iterdir()) and not force:
        raise InterpError(f"{out} already holds files; choose another --out or pass --force to overwrite them.")
    out.mkdir(parents=True, exist_ok=True)
    return out


def to_jsonable(obj: Any) -> Any:
    """Numbers from numpy/torch/pandas into plain JSON types."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if np is not None and isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def emit(summary: dict, as_json: bool, human: str | None = None) -> None:
    """--json: the summary on stdout; otherwise the human-readable text."""
    if as_json:
        click.echo(json.dumps(to_jsonable(summary), indent=2))
    elif human is not None:
        click.echo(human)


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(to_jsonable(data), indent=2))
    return path


def save_result(result, out: Path | None) -> None:
    """Write an analysis result into --out: one CSV per table, its PNG figures, summary.md, summary.json."""
    if out is None:
        return
    for name, table in result.tables().items():
        table.to_csv(out / f"{name}.csv", index=False)
    result.save_figures(out)
    (out / "summary.md").write_text(result.summary_markdown())
    write_json(out / "summary.json", result.to_json())
    click.echo(f"Wrote {out}/", err=True)


def run_cli(group: click.Group) -> int:
    """Run the group; InterpError and click usage errors become one line on stderr and a non-zero exit."""
    try:
        group.main(standalone_mode=False, prog_name="interp")
        return 0
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - only our own user errors are turned into one line
        from interp.errors import InterpError

        if isinstance(exc, InterpError):
            click.echo(f"Error: {exc}", err=True)
            return 1
        raise
