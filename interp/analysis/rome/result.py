"""What the edit analyses return: `EditEvalResult` (CounterFact-style scores) and `EditResult` (one edit,
the model before and after it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.analysis.result import Finding, ResultBase
from interp.analysis.rome.edit import Edit
from interp.analysis.rome.evaluate import bootstrap_ci
from interp.analysis.rome.key import EditRequest
from interp.analysis.rome.params import EDIT_FLAGS, EVAL_FLAGS, METRICS, EditEvalParams, EditParams, variant_flags
from interp.figures import new_figure
from interp.markdown import escape

# ROME's update (Edit.info["update"]) -> the editor `interp edit` names beside the layer
EDITOR_NAMES = {"original": "original ROME", "ours": "ROME ours", "r-rome": "r-ROME"}


@dataclass(repr=False)
class EditEvalResult(ResultBase):
    model: str
    params: EditEvalParams
    seconds: float
    per_fact: pd.DataFrame
    seconds_per_edit: float
    samples: list[dict]  # a before/after generation per group
    n_unknown: int = 0  # facts skipped because the model does not know them (known_only)
    command: str = ""

    cli_name = "edit-eval"
    cli_flags = EVAL_FLAGS

    @classmethod
    def cli_extra(cls, params: EditEvalParams) -> list[str]:
        return variant_flags(params.rome, params.memit)

    def groups(self) -> list | None:
        """Each fact's neighbourhood group (facts sharing prompts, `facts.splits.neighbourhood_groups`), the
        clusters the intervals resample; None for results written before the column existed (then facts are
        resampled one by one)."""
        return self.per_fact["group"].tolist() if "group" in self.per_fact else None

    def means(self) -> dict:
        """Mean of each score with its 95% cluster-bootstrap interval (whole neighbourhood groups resampled)."""
        out = {}
        groups = self.groups()
        for col in (*METRICS, "fluency", *(f"{m}_before" for m in METRICS), "fluency_before", "neighborhood_flipped"):
            if col not in self.per_fact:  # results written before the column existed
                continue
            vals = self.per_fact[col].to_numpy(dtype=float)
            lo, hi = bootstrap_ci(vals, self.params.seed, groups=groups)
            mean = float(np.nanmean(vals)) if not np.isnan(vals).all() else float("nan")  # nan: not measured
            out[col] = {"mean": mean, "ci95": [lo, hi]}
        return out

    def to_json(self) -> dict:
        m = self.means()
        groups = self.groups()
        return {"model": self.model, "seconds": self.seconds, "n": len(self.per_fact),
                "n_groups": None if groups is None else len(set(groups)),
                "skipped_unknown": self.n_unknown, "method": self.params.method,
                "edits": self.params.edits, **{k: m[k]["mean"] for k in (*METRICS, "fluency")},
                "seconds_per_edit": self.seconds_per_edit, "ci95": {k: v["ci95"] for k, v in m.items()},
                "before": {k: m[f"{k}_before"]["mean"] for k in (*METRICS, "fluency")},
                "neighborhood_flipped": m.get("neighborhood_flipped", {}).get("mean"),
                "layers": sorted({int(x) for s in self.per_fact["layers"] for x in str(s).split(",")}),
                "sample": self.samples[0] if self.samples else None}

    def tables(self) -> dict[str, pd.DataFrame]:
        m = self.means()
        summary = pd.DataFrame([{"metric": k, "mean": v["mean"], "ci95_low": v["ci95"][0], "ci95_high": v["ci95"][1]}
                                for k, v in m.items()])
        return {"per_fact": self.per_fact, "summary": summary}

    def figures(self) -> dict:
        m = self.means()
        fig, ax = new_figure((6, 3.5), dpi=120)
        x = np.arange(len(METRICS))
        for off, suffix, label in ((-0.2, "_before", "before edit"), (0.2, "", "after edit")):
            means = [m[k + suffix]["mean"] for k in METRICS]
            err = np.array([[m[k + suffix]["mean"] - m[k + suffix]["ci95"][0],
                             m[k + suffix]["ci95"][1] - m[k + suffix]["mean"]] for k in METRICS]).T
            ax.bar(x + off, means, 0.4, yerr=err, capsize=3, label=label)
        ax.set_xticks(x, METRICS)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{self.params.method.upper()} on {self.model}: {len(self.per_fact)} facts, "
                     f"{self.params.edits} at a time")
        ax.legend()
        return {"edit_eval": fig}

    def findings(self) -> list[Finding]:
        m, n, groups = self.means(), len(self.per_fact), self.groups()
        over = f"{n} facts" + ("" if groups is None else f" in {len(set(groups))} neighbourhood groups")
        interval = "bootstrap" if groups is None else "cluster-bootstrap"
        return [self.finding(k, f"{k.capitalize()} after {self.params.method.upper()} over {over}: "
                             f"{m[k]['mean']:.2f} [{m[k]['ci95'][0]:.2f}, {m[k]['ci95'][1]:.2f}] (95% {interval} "
                             f"interval; before the edit {m[k + '_before']['mean']:.2f}).", m[k]["mean"], "fraction")
                for k in METRICS]

    def summary_markdown(self) -> str:
        m = self.means()
        lines = [f"### {self.params.method.upper()} on {self.model} ({len(self.per_fact)} facts, "
                 f"{self.params.edits} edits at a time)",
                 "", "| metric | before | after (95% CI) |", "|---|---|---|"]
        for k in (*METRICS, "fluency"):
            a = m[k]
            if np.isnan(a["mean"]):  # --gen-prompts 0
                lines.append(f"| {k} | not measured | not measured |")
                continue
            lines.append(f"| {k} | {m[k + '_before']['mean']:.3f} "
                         f"| {a['mean']:.3f} [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] |")
        if "neighborhood_flipped" in m:
            f = m["neighborhood_flipped"]
            lines.append(f"| neighbours flipped (right before, wrong after) | - | {f['mean']:.3f} "
                         f"[{f['ci95'][0]:.3f}, {f['ci95'][1]:.3f}] |")
        groups = self.groups()
        if groups is not None:
            lines += ["", f"Intervals: 95% cluster bootstrap over the {len(set(groups))} neighbourhood groups of the "
                          f"{len(groups)} facts (facts sharing a prompt, or a relation and true object, are "
                          "resampled together)."]
        lines += ["", f"Seconds per edit (statistics cached): {self.seconds_per_edit:.1f}."]
        if self.n_unknown:
            n = self.n_unknown
            lines += ["", f"{n} fact{'s' if n != 1 else ''} the model does not know "
                          f"{'were' if n != 1 else 'was'} skipped."]
        if self.samples:
            s = self.samples[0]
            lines += ["", f"Before: {escape(repr(s['before']))}", "", f"After: {escape(repr(s['after']))}"]
        return "\n".join(lines)


@dataclass(repr=False)
class EditResult(ResultBase):
    """One edit and the model around it: p(new) / p(true) and a continuation before and after; the undo check."""

    model: str
    params: EditParams
    seconds: float
    edit: Edit
    request: EditRequest
    true_answer: str | None  # the fact's true answer, or the first word the unedited model continues with
    before: dict  # p_new, p_true (with a true answer), generation
    after: dict
    undo: dict | None = None  # weights_restored_exactly, generation (when params.undo)
    saved: str | None = None
    exported: str | None = None
    command: str = ""

    cli_name = "edit"
    cli_flags = EDIT_FLAGS

    @classmethod
    def cli_extra(cls, params: EditParams) -> list[str]:
        return variant_flags(params.rome)

    def to_json(self) -> dict:
        out = {"model": self.model, "seconds": self.seconds, "request": self.request.to_dict(),
               "true_answer": self.true_answer, "layers": self.edit.layers, "before": self.before,
               "after": self.after, "info": self.edit.info}
        out.update({k: v for k, v in (("exported", self.exported), ("saved", self.saved), ("undo", self.undo)) if v})
        return out

    def tables(self) -> dict[str, pd.DataFrame]:
        rows = [{"when": when, **{k: v for k, v in probe.items()}} for when, probe in
                (("before", self.before), ("after", self.after))]
        return {"probe": pd.DataFrame(rows)}

    def figures(self) -> dict:
        fig, ax = new_figure((5, 3), dpi=120)
        labels = [f"p({self.request.target_new})"] + ([f"p({self.true_answer})"] if self.true_answer else [])
        keys = ["p_new"] + (["p_true"] if self.true_answer else [])
        x = np.arange(len(keys))
        for off, (when, probe) in zip((-0.2, 0.2), (("before", self.before), ("after", self.after))):
            ax.bar(x + off, [probe[k] for k in keys], 0.4, label=f"{when} the edit")
        ax.set_xticks(x, labels)
        ax.set_ylim(0, 1.05)
        ax.legend()
        return {"edit_probe": fig}

    def findings(self) -> list[Finding]:
        r = self.request
        out = [self.finding("p_new_after", f"After the edit of layer {', '.join(map(str, self.edit.layers))}, "
                            f"p({escape(r.target_new)}) after {escape(repr(r.text))} "
                            f"is {self.after['p_new']:.3f} (before "
                            f"{self.before['p_new']:.3f}).", self.after["p_new"], "probability")]
        if self.undo is not None:
            out.append(self.finding("undo_exact", "Undo restores the original weights bit for bit: "
                                    f"{self.undo['weights_restored_exactly']}.", self.undo["weights_restored_exactly"]))
        return out

    def render(self) -> str:
        """The lines `interp edit` prints."""
        r, t = self.request, self.true_answer
        editor = EDITOR_NAMES.get(self.edit.info.get("update"), "")  # a MEMIT edit's update names no ROME variant
        lines = [f"{r.text!r}  (layer {', '.join(map(str, self.edit.layers))}{', ' + editor if editor else ''})"]
        for label, p in (("before", self.before), ("after", self.after)):
            probs = f"p({r.target_new})={p['p_new']:.3f}" + (f"  p({t})={p['p_true']:.3f}" if t else "")
            lines.append(f"{label:>6}: {probs}  ->{p['generation']!r}")
        if self.undo is not None:
            lines.append(f"  undo: weights restored exactly: {self.undo['weights_restored_exactly']}  "
                         f"->{self.undo['generation']!r}")
        lines += [f"{k}: {v}" for k, v in (("saved", self.saved), ("exported", self.exported)) if v]
        return "\n".join(lines)

    def summary_markdown(self) -> str:
        return "# One ROME edit on " + self.model + "\n\n```\n" + self.render() + "\n```\n"
