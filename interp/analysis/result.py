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

`ResultBase` supplies the rest from those: ``save_figures(dir)``, ``write(dir)`` (what ``--out`` and the
report's cache write), and the notebook reprs ``_repr_markdown_`` / ``_repr_html_``. The CLI and the report
only render results; neither computes anything of an analysis.
"""

from __future__ import annotations

import dataclasses
import shlex
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


def command_line(name: str, model: str, params: Any, flags: dict[str, str]) -> str:
    """``interp <name> --model <model>`` plus an option for every field of `params` that differs from its
    default and has one in `flags` (field -> "--flag"): a bool field's flag alone (it is the one that turns
    the default around: "--no-text", "--all-facts"); a tuple as "a,b", or, for a flag ending in "*" (a
    repeatable option), one "--flag item" per item. Fields without a flag are left out."""
    parts = ["interp", name, "--model", model]
    for f in dataclasses.fields(params):
        flag, value = flags.get(f.name), getattr(params, f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        if flag is None or value == default:
            continue
        if isinstance(value, bool):
            parts.append(flag)
        elif flag.endswith("*"):
            for item in value:
                parts += [flag[:-1], str(item)]
        else:
            parts += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return " ".join(shlex.quote(p) for p in parts)


class ResultBase:
    """Shared behaviour of every result; subclasses are dataclasses with model, params, seconds, command."""

    cli_name: str = ""  # the interp command of this analysis
    cli_flags: dict[str, str] = {}  # params field -> its CLI flag

    def reproduce(self) -> str:
        """The command that reproduces this result: the one that produced it, else one built from params."""
        command = getattr(self, "command", "")
        return command or command_line(self.cli_name, self.model, self.params, self.cli_flags)

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
