"""What every analysis returns: the result protocol, in code.

An analysis is one entry point ``run_<name>(model, params, progress=None) -> Result`` (see
`interp.analysis.induction.run` for the pattern). Every result has the fields

    model    the model's name
    params   the frozen params dataclass it was run with
    seconds  wall-clock seconds the run took
    command  the command that reproduces it (the CLI and the report set it; a default is derived from params)

and implements

    to_json()           plain JSON data (NaN-free once through `interp.jsonio`), the ``--json`` summary
    tables()            {name: pandas.DataFrame}
    figures()           {name: matplotlib Figure}, made without pyplot or a backend switch
    summary_markdown()  a short Markdown summary
    findings()          [Finding]: the key results as data (text, value, units, command)

`ResultBase` supplies the rest from those: ``reproduce()`` (``command``, else the ``interp <cli_name>`` line
that `command_line` writes from params and ``cli_flags``; tests/analysis/test_reproduce.py parses it back
for every analysis), ``save_figures(dir)``, ``write(dir)`` (what ``--out`` and the report's cache write), and
the notebook reprs ``_repr_markdown_`` / ``_repr_html_``. Every analysis is registered once, under its
``cli_name``, in `interp.analysis.registry`. The CLI and the report only render results; neither computes
anything of an analysis.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from interp.jsonio import write_json


@dataclass(frozen=True)
class Finding:
    """One key result: a sentence for readers, the number in it, its units, and how to reproduce it."""

    key: str  # short stable name, e.g. "ablation_top_loss_increase"
    text: str  # one sentence (Markdown inline allowed)
    value: float | int | str | None
    units: str  # "nats", "probability", "fraction", "layer", "" ...
    command: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@runtime_checkable
class AnalysisResult(Protocol):
    model: str
    params: Any
    seconds: float

    def to_json(self) -> dict: ...

    def tables(self) -> dict: ...

    def figures(self) -> dict: ...

    def summary_markdown(self) -> str: ...

    def findings(self) -> list[Finding]: ...


def command_line(name: str, model: str, params: Any, flags: dict[str, str], always: tuple[str, ...] = (),
                 extra: Sequence[str] = ()) -> str:
    """``interp <name> --model <model>`` plus an option for every field of `params` that differs from its
    default and has one in `flags` (field -> "--flag"; a dotted field such as "rome.layer" reaches into a nested
    params dataclass): a bool field's flag alone (it is the one that turns the default around: "--no-text",
    "--all-facts"); a tuple as "a,b", or, for a flag ending in "*" (a repeatable option), one "--flag item" per
    item. Fields in `always` are written even at their default (unless None): options the command wants
    together, such as --prompt with --subject. A flag without a leading dash ("PROMPT") is the command's
    positional argument: its value is always written, after the options. Fields without a flag are left out.
    `extra`: options that no single field stands for (a flag that sets several), written after --model."""
    parts, positional = ["interp", name, "--model", model, *extra], []
    for path, flag in flags.items():
        value, default = _field(params, path)
        if not flag.startswith("-"):
            positional.append(str(value))
        elif value == default and (path not in always or value is None):
            continue
        elif isinstance(value, bool):
            parts.append(flag)
        elif flag.endswith("*"):
            for item in value:
                parts += [flag[:-1], str(item)]
        else:
            parts += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    # "--" keeps a positional value that starts with a dash from being read as an option
    parts += (["--"] if any(p.startswith("-") for p in positional) else []) + positional
    return " ".join(shlex.quote(p) for p in parts)


def _field(params: Any, path: str) -> tuple[Any, Any]:
    """(value, the default of that field in its own dataclass) of a dotted field path."""
    *outer, leaf = path.split(".")
    for name in outer:
        params = getattr(params, name)
    f = next(f for f in dataclasses.fields(params) if f.name == leaf)
    default = (f.default if f.default is not dataclasses.MISSING
               else f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
    return getattr(params, leaf), default


class ResultBase:
    """Shared behaviour of every result; subclasses are dataclasses with model, params, seconds, command."""

    cli_name: str = ""  # the interp command of this analysis (its name in interp.analysis.registry)
    cli_flags: dict[str, str] = {}  # params field -> its CLI flag (see `command_line`)
    cli_always: tuple[str, ...] = ()  # fields written even at their default (see `command_line`)

    @classmethod
    def command_for(cls, model: str, params: Any) -> str:
        """The `interp` command that runs this analysis on `model` with `params` (see `command_line`)."""
        if not cls.cli_name:
            raise TypeError(f"{cls.__name__} names no CLI command (cli_name); register it in interp.analysis.registry.")
        return command_line(cls.cli_name, model, params, cls.cli_flags, cls.cli_always, cls.cli_extra(params))

    @classmethod
    def cli_extra(cls, params: Any) -> list[str]:
        """Options of `params` that no single field's flag writes (see `command_line`); none by default."""
        return []

    def reproduce(self) -> str:
        """The command that reproduces this result: the one that produced it, else one built from params."""
        return getattr(self, "command", "") or self.command_for(self.model, self.params)

    def finding(self, key: str, text: str, value: Any, units: str = "") -> Finding:
        return Finding(key, text, value, units, self.reproduce())

    def save_figures(self, out_dir: str | Path) -> list[Path]:
        from interp.figures import save_figure

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        return [save_figure(fig, out_dir / f"{name}.png") for name, fig in self.figures().items()]

    def write(self, folder: str | Path) -> dict:
        """summary.md, summary.json, findings.json, one CSV per table and figures/*.png; what was written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "summary.md").write_text(self.summary_markdown().strip() + "\n")
        write_json(folder / "summary.json", self.to_json())
        write_json(folder / "findings.json", [f.to_json() for f in self.findings()])
        tables = []
        for name, table in self.tables().items():
            path = folder / f"{_safe(name)}.csv"
            table.to_csv(path, index=False)
            tables.append(path.name)
        figures = [f"figures/{p.name}" for p in self.save_figures(folder / "figures")]
        return {"tables": tables, "figures": figures}

    def _repr_markdown_(self) -> str:
        return self.summary_markdown()

    def _repr_html_(self) -> str:
        from interp.markdown import to_html

        return to_html(self.summary_markdown())

    def __repr__(self) -> str:  # results are dataclasses with repr=False: their tables would flood a console
        return f"<{type(self).__name__} model={self.model!r} seconds={self.seconds:.1f}>"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
