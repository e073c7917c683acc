"""What every command shares: the common options, model loading, output folders, JSON, error handling.

Every command that loads a model takes ``--model``, ``--device`` and ``--dtype`` (`model_options`); every
command takes ``--json`` (a summary on stdout), ``--out DIR`` (files written there; a folder that already
holds files is refused unless ``--force``) and ``--no-progress`` (`output_options`); commands with any
randomness take ``--seed``. Each option means the same on every command: ``--force`` only ever allows
writing into a non-empty ``--out`` (``interp run`` / ``report`` recompute cached results with ``--recompute``).
An analysis command is `run_analysis`: build the params, load the model, run, write, print.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

DEFAULT_MODEL = "smollm2-135m"
DTYPES = ("float32", "bfloat16", "float16")


def model_option(f):
    return click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True,
                        help="Registered model name, .gguf file or Hugging Face directory.")(f)


def device_option(f):
    return click.option("--device", default="auto", show_default=True,
                        help="cpu, cuda, cuda:N or mps; auto picks cuda, then mps, then cpu.")(f)


def dtype_option(f):
    return click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True,
                        help="Precision of the weights and activations.")(f)


def model_options(f):
    """--model, --device, --dtype: which model, where, in what precision."""
    return model_option(device_option(dtype_option(f)))


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")(f)


def out_option(f):
    return click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Write the summary (Markdown, JSON), findings, tables (CSV) and figures (PNG) here.")(f)


def force_option(f):
    return click.option("--force", is_flag=True, help="Allow writing into an --out folder that already holds files.")(f)


def no_progress_option(f):
    return click.option("--no-progress", is_flag=True, help="No progress bars on stderr.")(f)


def output_options(f):
    """--json, --out, --force, --no-progress."""
    return json_option(out_option(force_option(no_progress_option(f))))


def seed_option(f):
    return click.option("--seed", type=int, default=0, show_default=True,
                        help="Random seed: the same seed gives the same numbers.")(f)


def sweep_options(f):
    """--workers, --ray-address: run the command's shards on Ray (interp.sweep); Ray is imported only then."""
    f = click.option("--ray-address", "ray_address", envvar="RAY_ADDRESS", default=None,
                     help="Run the shards on this existing Ray cluster (or set RAY_ADDRESS).")(f)
    return click.option("--workers", type=int, default=None,
                        help="Run the work in shards on a local Ray runtime with this many worker processes, "
                             "one model each; the output is the serial run's (pip install 'interp[ray]').")(f)


def load_model_for_cli(name: str, device: str = "auto", dtype: str = "float32"):
    """Load a model, telling the user on stderr (stdout stays clean for --json)."""
    from interp.model.load import load_model

    click.echo(f"Loading {name}...", err=True)
    return load_model(name, dtype=dtype, device=device)


def check_out(out: Path) -> None:
    """Refuse an --out that is a symbolic link or not a folder: what is written there would land elsewhere."""
    from interp.errors import InterpError

    if out.is_symlink():
        raise InterpError(f"{out} is a symbolic link; give the folder itself as --out "
                          "(interp never writes through links).")
    if out.exists() and not out.is_dir():
        raise InterpError(f"{out} exists and is not a folder; choose another --out.")


def first_link(folder: Path) -> Path | None:
    """A symbolic link anywhere inside `folder` (links are not followed), or None."""
    import os

    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            if os.path.islink(os.path.join(top, name)):
                return Path(top, name)
    return None


def prepare_out(out: Path | None, force: bool = False) -> Path | None:
    """Create --out; refuse a link, or a folder that already holds files unless --force (and even then one
    holding a symbolic link, which a write would follow out of the folder)."""
    from interp.errors import InterpError

    if out is None:
        return None
    check_out(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise InterpError(f"{out} already holds files; choose another --out or pass --force to overwrite them.")
        link = first_link(out)
        if link is not None:
            raise InterpError(f"{out} holds a symbolic link ({link.relative_to(out)}); interp never writes through "
                              "links, even with --force: remove it or choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    return out


def invocation() -> str:
    """The command line this process was started with, as `interp ...` (what reproduces its results)."""
    return " ".join(["interp"] + [shlex.quote(a) for a in sys.argv[1:]])


def emit(summary: Any, as_json: bool, human: str | None = None) -> None:
    """--json: the summary on stdout (plain JSON, NaN as null); otherwise the human-readable text."""
    from interp.jsonio import dumps

    if as_json:
        click.echo(dumps(summary))
    elif human is not None:
        click.echo(human)


def write_json(path: Path, data: Any) -> Path:
    from interp.jsonio import write_json as write

    return write(path, data)


def to_jsonable(obj: Any) -> Any:
    """Kept for older commands: the one serialiser is `interp.jsonio`."""
    from interp.jsonio import to_jsonable as convert

    return convert(obj)


def progress_for(no_progress: bool):
    from interp.progress import tqdm_progress

    return tqdm_progress(not no_progress)


def save_result(result, out: Path | None) -> None:
    """Write an analysis result into --out (see interp.analysis.result.ResultBase.write)."""
    if out is not None:
        result.write(out)
        click.echo(f"Wrote {out}/", err=True)


def run_analysis(entry: Callable, params, opts: dict, human: Callable | None = None, **kwargs) -> Any:
    """The body of every analysis command: check --out, load the model, run, write --out, print."""
    out = prepare_out(opts["out"], opts["force"])
    if opts.get("workers") is not None or opts.get("ray_address"):
        from interp.sweep.cli import run_sharded, serial_command

        result = run_sharded(entry, params, opts, **kwargs)
        result.command = serial_command(invocation())  # the same numbers as the serial command's
    else:
        model = load_model_for_cli(opts["model"], opts["device"], opts["dtype"])
        result = entry(model, params, progress=progress_for(opts["no_progress"]), **kwargs)
        result.command = invocation()
    save_result(result, out)
    emit(result.to_json(), opts["as_json"], human(result) if human else result.summary_markdown())
    return result


def one_line(message: str) -> str:
    """A message as one line (a library's multi-line text folded), ending in one full stop at most."""
    text = " ".join(message.split())
    while text.endswith(".."):
        text = text[:-1]
    return text


def run_cli(group: click.Group) -> int:
    """Run the group; InterpError becomes one line on stderr and exit status 1, a click usage error (an unknown
    option, a value of the wrong type) one line that says it is a usage error and exit status 2."""
    try:
        group.main(standalone_mode=False, prog_name="interp")
        return 0
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:  # a wrong option or argument: one line, exit status 2, and where the help is
        command = exc.ctx.command_path if exc.ctx is not None else "interp"
        click.echo(f"Error: {exc.format_message().rstrip('.')} (usage error; see '{command} --help').", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - only our own user errors are turned into one line
        from interp.errors import InterpError

        if isinstance(exc, InterpError):
            click.echo(f"Error: {one_line(str(exc))}", err=True)
            return 1
        raise
