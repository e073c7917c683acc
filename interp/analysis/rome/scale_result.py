"""What editing at scale returns: `EditScaleResult` (`interp edit-scale`: degradation curves per editor) and
`EditFactsResult` (`interp edit --facts`: many requests written, saved, undone)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.analysis.result import Finding, ResultBase
from interp.analysis.rome.params import variant_flags
from interp.analysis.rome.scale import EditFactsParams, EditScaleParams
from interp.figures import new_figure
from interp.markdown import escape

# the columns of EditScaleResult.rows, in order (tests check them)
ROW_COLUMNS = ("method", "n_edits", "efficacy", "paraphrase", "neighborhood", "earlier_held", "control_accuracy",
               "perplexity", "perplexity_ratio", "fluency", "dw_norm", "dw_norm_relative", "seconds_per_edit",
               "peak_memory_mb", "flagged", "collapsed")
_EDITOR_FLAGS = {"editors.rome.layer": "--layer", "editors.memit.layers": "--layers",
                 "editors.rome.stats.n_tokens": "--stats-tokens", "editors.rome.stats.corpus": "--corpus",
                 "editors.alphaedit.threshold": "--null-threshold",
                 "editors.alphaedit.relative_threshold": "--null-relative", "editors.alphaedit.l2": "--alpha-l2",
                 "editors.ft.norm_constraint": "--ft-eps", "editors.collapse_factor": "--collapse-factor",
                 "editors.on_outlier": "--on-outlier"}
SCALE_FLAGS = {"facts": "--facts", "methods": "--methods", "checkpoints": "--checkpoints",
               "batch_size": "--batch-size", "known_only": "--all-facts", "sample": "--sample",
               "n_control": "--controls", "heldout": "--heldout", "heldout_tokens": "--heldout-tokens",
               "n_gen_prompts": "--gen-prompts", "gen_tokens": "--gen-tokens", "check_every": "--check-every",
               "max_minutes": "--max-minutes",
               "seed": "--seed", **_EDITOR_FLAGS}
FACTS_FLAGS = {"facts": "--facts", "method": "--method", "batch_size": "--batch-size", "limit": "--limit",
               "sample": "--sample", "save": "--save", "undo": "--undo", "heldout": "--heldout",
               "check_every": "--check-every", "seed": "--seed", **_EDITOR_FLAGS}


@classmethod
def editors_variant(cls, params) -> list[str]:
    """The results' `cli_extra`: --ours / --reference for the editors of EditScaleParams / EditFactsParams
    (`variant_flags`)."""
    return variant_flags(params.editors.rome, params.editors.memit)


_METRICS = ("efficacy", "paraphrase", "neighborhood", "earlier_held", "control_accuracy")


@dataclass(repr=False)
class EditScaleResult(ResultBase):
    model: str
    params: EditScaleParams
    seconds: float
    rows: pd.DataFrame  # one row per (editor, checkpoint), ROW_COLUMNS; the unedited model as method "none"
    norms: pd.DataFrame  # per (editor, checkpoint, layer): ||W - W0||, relative
    steps: pd.DataFrame  # per (editor, step): update norm, flagged, seconds, perplexity when checked
    base_perplexity: float
    n_edit_facts: int
    n_control: int
    restored: dict  # editor -> the weights were put back bit for bit
    notes: list  # collapses and outlier stops, one sentence each
    command: str = ""

    cli_name = "edit-scale"
    cli_flags = SCALE_FLAGS
    cli_extra = editors_variant

    def _edited(self) -> pd.DataFrame:
        return self.rows[self.rows["method"] != "none"]

    def to_json(self) -> dict:
        rows = self.rows.replace({np.nan: None}).to_dict("records")
        return {"model": self.model, "seconds": self.seconds, "methods": list(self.params.methods),
                "checkpoints": list(self.params.checkpoints), "edit_facts": self.n_edit_facts,
                "control_facts": self.n_control, "base_perplexity": self.base_perplexity, "rows": rows,
                "restored_exactly": self.restored, "notes": self.notes}

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"scale": self.rows, "norms": self.norms, "steps": self.steps}

    def figures(self) -> dict:
        fig, axes = new_figure((11, 7), dpi=120, nrows=2, ncols=2)
        (a, b), (c, d) = axes
        edited = self._edited()
        for method, g in edited.groupby("method", sort=False):
            line = a.plot(g["n_edits"], g["efficacy"], marker="o", label=f"{method} ES")[0]
            a.plot(g["n_edits"], g["paraphrase"], ls="--", color=line.get_color(), label=f"{method} PS")
            a.plot(g["n_edits"], g["neighborhood"], ls=":", color=line.get_color(), label=f"{method} NS")
            b.plot(g["n_edits"], g["earlier_held"], marker="o", color=line.get_color(), label=f"{method} held")
            b.plot(g["n_edits"], g["control_accuracy"], ls="--", color=line.get_color(), label=f"{method} never edited")
            c.plot(g["n_edits"], g["perplexity_ratio"], marker="o", color=line.get_color(), label=method)
            d.plot(g["n_edits"], g["dw_norm_relative"].clip(lower=1e-12), marker="o", color=line.get_color(),
                   label=method)
        c.axhline(self.params.editors.collapse_factor, color="red", lw=0.8, ls="--", label="collapse")
        panels = ((a, "edited facts", "ES / PS / NS"), (b, "earlier edits / never-edited facts", "fraction"),
                  (c, "held-out perplexity", "x unedited"), (d, "edited weights", "||W - W0|| / ||W0||"))
        for ax, title, ylabel in panels:
            ax.set_xscale("log")
            ax.set_title(title, fontsize=9)
            ax.set_ylabel(ylabel)
            ax.set_xlabel("edits")
            ax.legend(fontsize=6)
        c.set_yscale("log")
        d.set_yscale("log")
        fig.suptitle(f"Editing at scale on {self.model}")
        return {"edit_scale": fig}

    def findings(self) -> list[Finding]:
        out = []
        for method, g in self._edited().groupby("method", sort=False):
            last = g.iloc[-1]
            out.append(self.finding(f"{method}_last", f"{method} after {int(last['n_edits'])} edits: ES "
                                    f"{last['efficacy']:.2f}, earlier edits held {last['earlier_held']:.2f}, "
                                    f"never-edited accuracy {last['control_accuracy']:.2f}, perplexity x"
                                    f"{last['perplexity_ratio']:.2f}.", float(last["efficacy"]), "fraction"))
        out.append(self.finding("restored", "Every editor's weights were restored bit for bit: "
                                f"{all(self.restored.values())}.", all(self.restored.values())))
        return out

    def summary_markdown(self) -> str:
        cols = ("method", "n_edits", *_METRICS, "perplexity_ratio", "fluency", "dw_norm_relative", "seconds_per_edit")
        lines = [f"### Editing at scale on {self.model} ({self.n_edit_facts} facts to edit, {self.n_control} never "
                 f"edited; unedited perplexity {self.base_perplexity:.2f})", "",
                 "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for _, r in self.rows.iterrows():
            lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
        lines += ["", *[f"- {escape(n)}" for n in self.notes]]
        lines += ["", f"Weights restored bit for bit: {self.restored}."]
        return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "-" if np.isnan(v) else f"{v:.3g}"
    return escape(str(v))


@dataclass(repr=False)
class EditFactsResult(ResultBase):
    model: str
    params: EditFactsParams
    seconds: float
    facts: list
    scores: list  # fact_scores after all edits
    steps: list  # session Steps
    perplexities: dict  # step -> held-out perplexity when checked
    base_perplexity: float
    saved: str | None
    undo_exact: bool | None  # None: not undone
    change_norms: dict  # layer -> (||W - W0||, relative)
    command: str = ""

    cli_name = "edit"
    cli_flags = FACTS_FLAGS
    cli_extra = editors_variant

    def per_fact(self) -> pd.DataFrame:
        return pd.DataFrame([{"case_id": f.case_id, "subject": f.subject, "target_new": f.target_new,
                              "target_true": f.target_true, "p_new": s["p_new"], "p_true": s["p_true"],
                              **{k: s[k] for k in ("efficacy", "paraphrase", "neighborhood")}}
                             for f, s in zip(self.facts, self.scores)])

    def _mean(self, col: str) -> float:
        v = self.per_fact()[col].to_numpy(dtype=float)
        return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")

    def to_json(self) -> dict:
        last = self.perplexities[max(self.perplexities)] if self.perplexities else None
        return {"model": self.model, "seconds": self.seconds, "method": self.params.method, "edits": len(self.facts),
                "steps": len(self.steps),
                **{k: _none(self._mean(k)) for k in ("efficacy", "paraphrase", "neighborhood")},
                "perplexity_before": self.base_perplexity, "perplexity_after": last, "saved": self.saved,
                "undo_exact": self.undo_exact, "flagged_steps": [s.index for s in self.steps if s.flagged],
                "change_norms": {str(k): list(v) for k, v in self.change_norms.items()}}

    def tables(self) -> dict[str, pd.DataFrame]:
        steps = pd.DataFrame([{"step": s.index, "n_edits": s.n_edits, "update_norm": s.update_norm,
                               "flagged": s.flagged, "seconds": s.seconds,
                               "perplexity": self.perplexities.get(s.index, np.nan)} for s in self.steps])
        return {"per_fact": self.per_fact(), "steps": steps}

    def figures(self) -> dict:
        fig, ax = new_figure((6, 3.5), dpi=120)
        ax.plot([s.n_edits for s in self.steps], [s.update_norm for s in self.steps], marker=".")
        flagged = [s for s in self.steps if s.flagged]
        ax.scatter([s.n_edits for s in flagged], [s.update_norm for s in flagged], color="red", label="flagged",
                   zorder=3)
        ax.set_xlabel("edits written")
        ax.set_ylabel("||update||_F")
        ax.set_title(f"{self.params.method} on {self.model}: update norm per step", fontsize=9)
        ax.legend(fontsize=7)
        return {"edit_facts_norms": fig}

    def findings(self) -> list[Finding]:
        n = len(self.facts)
        out = [self.finding("efficacy", f"{self.params.method} wrote {n} facts; efficacy over all of them afterwards "
                            f"{self._mean('efficacy'):.2f}.", _none(self._mean("efficacy")), "fraction")]
        if self.undo_exact is not None:
            out.append(self.finding("undo_exact", f"Undo after {n} edits restores the weights bit for bit: "
                                    f"{self.undo_exact}.", self.undo_exact))
        return out

    def render(self) -> str:
        j = self.to_json()
        lines = [f"{j['method']}: {j['edits']} facts in {j['steps']} steps on {self.model}",
                 f"  efficacy {_fmt(self._mean('efficacy'))}  paraphrase {_fmt(self._mean('paraphrase'))}  "
                 f"neighbourhood {_fmt(self._mean('neighborhood'))}",
                 f"  held-out perplexity {self.base_perplexity:.2f} -> {_fmt(j['perplexity_after'] or float('nan'))}"]
        if j["flagged_steps"]:
            lines.append(f"  update norm far outside the earlier ones at steps {j['flagged_steps']}")
        lines += [f"  saved: {self.saved}"] if self.saved else []
        if self.undo_exact is not None:
            lines.append(f"  undo: weights restored exactly: {self.undo_exact}")
        return "\n".join(lines)

    def summary_markdown(self) -> str:
        return f"# Many edits on {self.model}\n\n```\n{self.render()}\n```\n"


def _none(x: float):
    return None if x != x else x


def merge(folders: list, out) -> EditScaleResult:
    """One result (table, curves, findings) from several `interp edit-scale --out` folders of the same model,
    facts and checkpoints, one editor each (so long runs can go on separate machines); written into `out`.
    A folder holding a file `code_commit` (the git commit its run was made from) gives its rows a column
    ``code_commit`` with it.

        python -m interp.analysis.rome.scale_result OUT RUN1 RUN2 ...
    """
    import dataclasses
    import json
    from pathlib import Path

    from interp.errors import InvalidInputError

    runs, commands = [], []
    for folder in map(Path, folders):
        try:
            summary = json.loads((folder / "summary.json").read_text())
            tables = [pd.read_csv(folder / f"{name}.csv") for name in ("scale", "norms", "steps")]
            command = json.loads((folder / "findings.json").read_text())[0]["command"]
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise InvalidInputError(f"{folder} is not an edit-scale --out folder ({exc}).") from None
        if (folder / "code_commit").is_file():
            commit = (folder / "code_commit").read_text().strip()
            tables = [t.assign(code_commit=commit) for t in tables]
        runs.append((summary, tables))
        commands.append(command)
    first = runs[0][0]
    if any((s["model"], s["checkpoints"], s["edit_facts"]) != (first["model"], first["checkpoints"],
                                                               first["edit_facts"]) for s, _ in runs):
        raise InvalidInputError("These runs differ in model, checkpoints or facts; merge runs of one setting.")
    rows = pd.concat([runs[0][1][0][runs[0][1][0]["method"] == "none"]]
                     + [t[0][t[0]["method"] != "none"] for _, t in runs], ignore_index=True)
    methods = tuple(m for s, _ in runs for m in s["methods"])
    params = dataclasses.replace(EditScaleParams(), methods=methods, checkpoints=tuple(first["checkpoints"]))
    result = EditScaleResult(first["model"], params, sum(s["seconds"] for s, _ in runs), rows,
                             pd.concat([t[1] for _, t in runs], ignore_index=True),
                             pd.concat([t[2] for _, t in runs], ignore_index=True), first["base_perplexity"],
                             first["edit_facts"], first["control_facts"],
                             {k: v for s, _ in runs for k, v in s["restored_exactly"].items()},
                             [n for s, _ in runs for n in s["notes"]],
                             command=" ; ".join(commands))
    result.write(out)
    return result


if __name__ == "__main__":
    import sys

    merge(sys.argv[2:], sys.argv[1])
