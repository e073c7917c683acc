"""What causal tracing returns: the single prompt's traces and, with a fact set, the effects averaged over facts,
as tables, figures, findings and a summary.

See `interp.analysis.facts.causal_trace` (Meng et al. 2022) for the method; the knowledge-neuron search's result
is `interp.analysis.facts.neurons_result.NeuronResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from interp.analysis.facts.causal_trace import FactTrace
from interp.analysis.facts.params import CATEGORIES, TRACE_FLAGS, TraceParams
from interp.analysis.recall.stats import bootstrap_mean
from interp.analysis.result import Finding, ResultBase
from interp.figures import new_figure
from interp.markdown import escape

CMAPS = {"resid": "Purples", "mlp": "Greens", "attn": "Reds"}
KIND_LABEL = {"resid": "residual stream (block output)", "mlp": "MLP output", "attn": "attention output"}
CATEGORY_LABEL = {"first_subject": "first subject token", "middle_subject": "middle subject tokens",
                  "last_subject": "last subject token", "first_subsequent": "first subsequent token",
                  "further": "further tokens", "last": "last token"}


@dataclass(repr=False)
class TraceResult(ResultBase):
    model: str
    params: TraceParams
    seconds: float
    sigma: float
    single: FactTrace  # traced at every token
    facts: list[FactTrace]  # traced at the key tokens (empty without a fact set)
    skipped: list = field(default_factory=list)  # case ids of facts the model does not know (not traced)
    command: str = ""

    cli_name = "trace"
    cli_flags = TRACE_FLAGS
    cli_always = ("prompt", "subject")  # the command takes them together or not at all

    # --- tables -------------------------------------------------------------------------------------
    def heatmap_table(self, kind: str) -> pd.DataFrame:
        tr = self.single
        rows = []
        for i, pos in enumerate(tr.positions):
            for layer in range(tr.scores[kind].shape[1]):
                p = tr.scores[kind][i, layer]
                rows.append({"position": pos, "token": tr.case.str_tokens[pos], "layer": layer, "p": p,
                             "ie": p - tr.p_corrupted,
                             "subject": tr.case.subject_start <= pos < tr.case.subject_end})
        return pd.DataFrame(rows)

    def averaged(self) -> pd.DataFrame:
        """Average indirect effect per (kind, category, layer) over the facts, with the count of facts."""
        rows = []
        for kind in self.params.kinds:
            per_cat = {c: np.stack([f.category_effects(kind)[c] for f in self.facts]) for c in CATEGORIES}
            for cat, arr in per_cat.items():  # arr (n_facts, n_layers), NaN rows where the category is empty
                n = int((~np.isnan(arr[:, 0])).sum())
                means = np.nanmean(arr, 0) if n else np.full(arr.shape[1], np.nan)
                for layer, v in enumerate(means):
                    rows.append({"kind": kind, "category": cat, "layer": layer, "aie": v, "n_facts": n})
        return pd.DataFrame(rows)

    def fact_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"case_id": f.case.case_id, "prompt": f.case.prompt.replace("{}", f.case.subject),
                              "subject": f.case.subject, "target": f.case.target, "p_clean": f.p_clean,
                              "p_corrupted": f.p_corrupted, "te": f.p_clean - f.p_corrupted} for f in self.facts])

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {f"trace_{k}": self.heatmap_table(k) for k in self.params.kinds}
        if self.facts:
            out["averaged_effects"] = self.averaged()
            out["facts"] = self.fact_table()
        return out

    # --- peaks --------------------------------------------------------------------------------------
    def peaks(self) -> dict:
        tr = self.single
        out = {}
        for kind in self.params.kinds:
            i, layer = np.unravel_index(np.argmax(tr.scores[kind]), tr.scores[kind].shape)
            pos = tr.positions[i]
            out[kind] = {"layer": int(layer), "token": tr.case.str_tokens[pos], "position": int(pos),
                         "p": float(tr.scores[kind][i, layer]), "ie": float(tr.scores[kind][i, layer] - tr.p_corrupted)}
        return out

    def effect_interval(self, kind: str, category: str, layer: int) -> list[float]:
        """95% percentile-bootstrap interval over the facts of the AIE at one (kind, category, layer)."""
        values = [f.category_effects(kind)[category][layer] for f in self.facts]
        return list(bootstrap_mean(values, seed=self.params.seed))

    def averaged_peaks(self) -> dict:
        """Per kind: the (category, layer) of the largest AIE, and the peak layer at each category, each with
        its interval over the facts and the number of facts it averages."""
        avg = self.averaged()
        out = {}
        for kind in self.params.kinds:
            sub = avg[(avg.kind == kind) & avg.aie.notna()]
            best = sub.loc[sub.aie.idxmax()]
            by_cat = {}
            for c, g in sub.groupby("category", sort=False):
                top = g.loc[g.aie.idxmax()]
                by_cat[c] = {"layer": int(top.layer), "aie": float(top.aie), "n_facts": int(top.n_facts),
                             "ci": self.effect_interval(kind, c, int(top.layer))}
            out[kind] = {"category": best.category, "layer": int(best.layer), "aie": float(best.aie),
                         "n_facts": int(best.n_facts), "ci": self.effect_interval(kind, best.category, int(best.layer)),
                         "by_category": by_cat}
        return out

    def to_json(self) -> dict:
        tr = self.single
        out = {"model": self.model, "seconds": self.seconds, "prompt": tr.case.prompt.replace("{}", tr.case.subject),
               "subject": tr.case.subject, "target": tr.case.target, "p_clean": tr.p_clean,
               "p_corrupted": tr.p_corrupted, "sigma": self.sigma, "noise": self.params.noise,
               "samples": self.params.samples, "window": self.params.window, "seed": self.params.seed,
               "tokens": tr.case.str_tokens, "peak": self.peaks()}
        if self.facts:
            avg = self.averaged()
            out["averaged"] = {
                "n_facts": len(self.facts), "n_skipped": len(self.skipped), "skipped": self.skipped,
                "n_set": len(self.params.facts), "sample": self.params.sample,
                "p_clean": float(np.mean([f.p_clean for f in self.facts])),
                "p_corrupted": float(np.mean([f.p_corrupted for f in self.facts])),
                "peak": self.averaged_peaks(),
                "effects": {k: {c: avg[(avg.kind == k) & (avg.category == c)].aie.tolist() for c in CATEGORIES}
                            for k in self.params.kinds},
            }
        return out

    # --- figures and summary ------------------------------------------------------------------------
    def figures(self) -> dict:
        out = {f"trace_{kind}": self._trace_figure(kind) for kind in self.params.kinds}
        if self.facts:
            out["averaged_effects"] = self._averaged_figure()
        return out

    def _trace_figure(self, kind: str):
        tr = self.single
        labels = [t + ("*" if tr.case.subject_start <= p < tr.case.subject_end else "")
                  for p, t in zip(tr.positions, (tr.case.str_tokens[q] for q in tr.positions))]
        fig, ax = new_figure((7, 0.35 * len(labels) + 1.5), dpi=120)
        im = ax.imshow(tr.scores[kind], aspect="auto", cmap=CMAPS[kind], interpolation="nearest")
        ax.set_yticks(range(len(labels)), [repr(s)[1:-1] for s in labels])
        ax.set_xlabel("layer" + ("" if kind == "resid" else f" (centre of a {self.params.window}-layer window)"))
        ax.set_title(f"Restoring {KIND_LABEL[kind]}: p({tr.case.target!r})\n"
                     f"clean {tr.p_clean:.3f}, corrupted {tr.p_corrupted:.3f} (* = subject)", fontsize=9)
        fig.colorbar(im, ax=ax)
        return fig

    def _averaged_figure(self):
        avg, kinds = self.averaged(), self.params.kinds
        fig, axes = new_figure((5 * len(kinds), 3), dpi=120, ncols=len(kinds), squeeze=False)
        for ax, kind in zip(axes[0], kinds):
            grid = np.array([avg[(avg.kind == kind) & (avg.category == c)].aie.to_numpy() for c in CATEGORIES])
            im = ax.imshow(grid, aspect="auto", cmap=CMAPS[kind], interpolation="nearest")
            ax.set_yticks(range(len(CATEGORIES)), [CATEGORY_LABEL[c] for c in CATEGORIES], fontsize=8)
            ax.set_xlabel("layer")
            ax.set_title(f"AIE, {KIND_LABEL[kind]} ({len(self.facts)} facts)", fontsize=9)
            fig.colorbar(im, ax=ax)
        return fig

    def findings(self) -> list[Finding]:
        tr, out = self.single, []
        for kind, pk in self.peaks().items():
            out.append(self.finding(
                f"peak_{kind}",
                f"Restoring the {KIND_LABEL[kind]} at {escape(repr(pk['token']))} in layer {pk['layer']} brings "
                f"p({escape(tr.case.target)}) back from {tr.p_corrupted:.3f} to {pk['p']:.3f} "
                f"(clean {tr.p_clean:.3f}).", pk["layer"], "layer"))
        if self.facts:
            for kind, pk in self.averaged_peaks().items():
                out.append(self.finding(f"averaged_peak_{kind}", f"Over {len(self.facts)} facts, the {KIND_LABEL[kind]}"
                                        f" matters most at the {CATEGORY_LABEL[pk['category']]}, layer {pk['layer']} "
                                        f"({_peak_cell(pk, layer=False)}).", pk["aie"], "probability"))
        return out

    def summary_markdown(self) -> str:
        tr = self.single
        lines = [f"# Causal tracing on {self.model}", "",
                 f"Prompt: {escape(repr(tr.case.prompt.replace('{}', tr.case.subject)))} (subject "
                 f"{escape(repr(tr.case.subject))}), answer {escape(repr(tr.case.target))}. "
                 f"Noise {self.params.noise} x sigma = {self.params.noise * self.sigma:.4f} on "
                 f"the subject embeddings, {self.params.samples} samples (seed {self.params.seed}), window "
                 f"{self.params.window}.", "",
                 f"p_clean = {tr.p_clean:.3f}, p_corrupted = {tr.p_corrupted:.3f}.", "",
                 "| kind | peak token | peak layer | p restored | indirect effect |", "|---|---|---|---|---|"]
        for kind, pk in self.peaks().items():
            lines.append(f"| {kind} | {escape(repr(pk['token']))} (#{pk['position']}) | {pk['layer']} "
                         f"| {pk['p']:.3f} | {pk['ie']:+.3f} |")
        if self.facts:
            j = self.to_json()["averaged"]
            drawn = (f"{j['sample']} facts drawn at random (seed {self.params.seed}) from the set's {j['n_set']}"
                     if j["sample"] is not None and j["sample"] < j["n_set"] else f"the set's {j['n_set']} facts")
            lines += ["", f"## Average over {j['n_facts']} facts", "",
                      f"Of {drawn}, {j['n_skipped']} {'was' if j['n_skipped'] == 1 else 'were'} skipped because "
                      "the model's greedy answer is not the true one (as the reference does); sigma is measured "
                      f"over the subjects of all {j['n_set']} facts.", "",
                      f"Mean p_clean = {j['p_clean']:.3f}, mean p_corrupted = {j['p_corrupted']:.3f}.", "",
                      "Peak layer (and AIE, with its 95% bootstrap interval over the facts) of each kind at each "
                      "token category (further tokens: those between the first subsequent token and the last; "
                      "a category a prompt lacks is averaged over the facts that have it):", "",
                      "| kind | " + " | ".join(CATEGORY_LABEL[c] for c in CATEGORIES) + " |",
                      "|---" * (len(CATEGORIES) + 1) + "|"]
            for kind, pk in j["peak"].items():
                cells = [_peak_cell(pk["by_category"][c]) if c in pk["by_category"] else "-" for c in CATEGORIES]
                lines.append(f"| {kind} | " + " | ".join(cells) + " |")
            lines += ["", "Strongest averaged effect: " + "; ".join(
                f"{k} at the {CATEGORY_LABEL[pk['category']]}, layer {pk['layer']} ({_peak_cell(pk, layer=False)})"
                for k, pk in j["peak"].items()) + "."]
        return "\n".join(lines) + "\n"


def _peak_cell(peak: dict, layer: bool = True) -> str:
    """"layer (AIE +0.123 [+0.100, +0.150], n facts)" of one averaged peak."""
    lo, hi = peak["ci"]
    text = f"AIE {peak['aie']:+.3f} [{lo:+.3f}, {hi:+.3f}], {peak['n_facts']} facts"
    return f"{peak['layer']} ({text})" if layer else text
