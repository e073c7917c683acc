"""What causal tracing and the knowledge-neuron search return: tables, figures, findings, summaries.

See `interp.analysis.facts.causal_trace` (Meng et al. 2022) and `interp.analysis.facts.neurons` (Dai et al.
2022) for the methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from interp.analysis.facts.causal_trace import FactTrace
from interp.analysis.facts.neuron_controls import ACTIONS, GROUPS
from interp.analysis.facts.neurons import FactNeurons
from interp.analysis.facts.params import CATEGORIES, NEURON_FLAGS, TRACE_FLAGS, NeuronParams, TraceParams
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


# Dai et al. (ACL 2022), Sec. 4, BERT-base on PARAREL: mean relative change of p(correct), in %.
DAI_PUBLISHED = {"suppress": -29.0, "amplify": 31.2, "random": 1.5}
# controls' prompt groups -> the groups the tables report: the search's own prompts, held-out ones, unrelated facts
EFFECT_GROUPS = {"fact": "selection", "paraphrases": "selection", "heldout": "heldout", "unrelated": "unrelated"}
EFFECT_LABEL = {"selection": "the prompts that found them", "heldout": "held-out prompts",
                "unrelated": "unrelated facts"}


def _ci_text(mean: float, lo: float, hi: float) -> str:
    """"+12.3 % [+4.5, +20.1]" (no interval when it is undefined)."""
    if np.isnan(lo) or np.isnan(hi):
        return f"{mean:+.1f} %"
    return f"{mean:+.1f} % [{lo:+.1f}, {hi:+.1f}]"


@dataclass(repr=False)
class NeuronResult(ResultBase):
    model: str
    params: NeuronParams
    seconds: float
    facts: list[FactNeurons]
    controls: pd.DataFrame
    n_layers: int
    command: str = ""

    cli_name = "neurons"
    cli_flags = NEURON_FLAGS
    cli_always = ("prompt", "subject")  # the command takes them together or not at all

    def neuron_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"case_id": f.case_id, "relation": f.relation, "target": f.target, "layer": l,
                              "neuron": u, "score": s} for f in self.facts for l, u, s in f.neurons],
                            columns=["case_id", "relation", "target", "layer", "neuron", "score"])

    def relations(self) -> list[dict]:
        """Each relation's refinement: its facts, how many kept no neuron, p and where it was tuned, the rounds."""
        out: dict = {}
        for f in self.facts:
            r = out.setdefault(str(f.relation), {"relation": f.relation, "facts": 0, "without_neurons": 0,
                                                 "p": f.p, "tuned_on": f.tuned_on, "steps": f.history})
            r["facts"] += 1
            r["without_neurons"] += not f.neurons
        return list(out.values())

    def steps_table(self) -> pd.DataFrame:
        rows = [{"case_id": f.case_id, "relation": f.relation, "step": f"threshold, prompt {i}", "p": None,
                 "count": c} for f in self.facts for i, c in enumerate(f.per_prompt_counts)]
        rows += [{"case_id": None, "relation": r["relation"],
                  "step": f"refine on the {'tuning part' if r['tuned_on'] == 'tune' else 'facts'} (mean neurons "
                          "per fact)", "p": h["p"], "count": h["mean_count"]}
                 for r in self.relations() for h in r["steps"]]
        return pd.DataFrame(rows)

    def control_table(self) -> pd.DataFrame:
        """The paper-style table: mean relative change of p(true) (%) and mean delta, per action and set."""
        c = self.controls
        # average random seeds within a prompt first, so found and random weigh prompts alike
        per_prompt = c.groupby(["action", "neurons", "group", "case_id", "prompt"], dropna=False)[
            ["relative", "delta"]].mean().reset_index()
        out = per_prompt.groupby(["action", "neurons", "group"])[["relative", "delta"]].mean().reset_index()
        out["relative_pct"] = 100 * out.pop("relative")
        return out

    def fact_effects(self) -> pd.DataFrame:
        """One value per (fact, action, neurons, group): the relative change of p(true) in %, averaged over the
        fact's prompts of that group (random seeds averaged within a prompt first). Facts are the unit the
        intervals resample."""
        c = self.controls.copy()
        if c.empty:
            return pd.DataFrame(columns=["case_id", "relation", "action", "neurons", "group", "relative_pct"])
        c["group"] = c["group"].map(EFFECT_GROUPS)
        per_prompt = c.groupby(["action", "neurons", "group", "case_id", "prompt"], dropna=False)[
            "relative"].mean().reset_index()
        out = per_prompt.groupby(["case_id", "action", "neurons", "group"], dropna=False)["relative"].mean()
        out = out.reset_index()
        out["relative_pct"] = 100 * out.pop("relative")
        relation = {f.case_id: f.relation for f in self.facts}
        out.insert(1, "relation", out.case_id.map(relation))
        return out

    def effect(self, action: str, which: str, group: str, relation=None) -> dict:
        """Mean relative change (%) over facts with its 95% bootstrap interval over facts, and n facts."""
        e = self.fact_effects()
        sel = e[(e.action == action) & (e.neurons == which) & (e.group == group)]
        if relation is not None:
            sel = sel[sel.relation.astype(str) == str(relation)]
        values = sel.relative_pct.to_numpy()
        if not len(values):
            return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
        lo, hi = bootstrap_mean(values, seed=self.params.seed)
        return {"mean": float(values.mean()), "lo": lo, "hi": hi, "n": int(len(values))}

    def groups(self) -> list[str]:
        present = set(self.fact_effects().group)
        return [g for g in ("heldout", "selection", "unrelated") if g in present]

    def relation_table(self) -> pd.DataFrame:
        """Per relation (and all together): facts, facts with neurons, p and where it was tuned, mean neurons, and
        each action's effect of the found and of random units on each prompt group, % with 95% intervals."""
        rows = []
        rels = self.relations()
        for r in [*rels, None]:
            rel = None if r is None else r["relation"]
            facts = [f for f in self.facts if r is None or str(f.relation) == str(rel)]
            row = {"relation": "all" if r is None else ("-" if rel is None else str(rel)), "facts": len(facts),
                   "with_neurons": sum(bool(f.neurons) for f in facts),
                   "p": None if r is None else r["p"], "tuned_on": None if r is None else r["tuned_on"],
                   "mean_neurons": float(np.mean([len(f.neurons) for f in facts])) if facts else float("nan")}
            for action in ACTIONS:
                for group in self.groups():
                    for which in ("found", "random"):
                        e = self.effect(action, which, group, None if r is None else rel)
                        key = f"{action}_{which}_{group}"
                        row.update({f"{key}_pct": e["mean"], f"{key}_lo": e["lo"], f"{key}_hi": e["hi"],
                                    f"{key}_n": e["n"]})
            rows.append(row)
        return pd.DataFrame(rows)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"neurons": self.neuron_table(), "refinement": self.steps_table(), "controls": self.controls,
                "control_summary": self.control_table(), "fact_effects": self.fact_effects(),
                "relations": self.relation_table()}

    def to_json(self) -> dict:
        t = self.control_table()
        summary = {action: {which: {g: {"relative_pct": float(r.relative_pct), "delta": float(r.delta)}
                                    for g in GROUPS for r in t[(t.action == action) & (t.neurons == which)
                                                               & (t.group == g)].itertuples()}
                            for which in ("found", "random")} for action in ACTIONS}
        effects = {action: {which: {g: self.effect(action, which, g) for g in self.groups()}
                            for which in ("found", "random")} for action in ACTIONS}
        many = len(self.facts) > 1
        neurons = [{**({"case_id": f.case_id} if many else {}), "layer": l, "neuron": u, "score": s}
                   for f in self.facts for l, u, s in f.neurons]
        return {"model": self.model, "seconds": self.seconds, "n_facts": len(self.facts),
                "random_seeds": self.params.random_seeds, "steps": self.params.steps,
                "neurons": neurons, "n_without_neurons": sum(not f.neurons for f in self.facts),
                "refinement": [{"case_id": f.case_id, "relation": f.relation, "n_prompts": len(f.prompts),
                                "n_heldout": len(f.heldout), "per_prompt": f.per_prompt_counts,
                                "n_neurons": len(f.neurons), "p": f.p, "tuned_on": f.tuned_on} for f in self.facts],
                "relations": self.relations(), "effects": effects,
                "relation_table": self.relation_table().to_dict(orient="records"),
                "paper": {"source": "Dai et al. (ACL 2022), BERT-base", "relative_pct": DAI_PUBLISHED},
                **summary}

    def figures(self) -> dict:
        return {"neuron_controls": self._controls_figure(), "neuron_layers": self._layers_figure()}

    def _controls_figure(self):
        groups = self.groups()
        fig, axes = new_figure((9, 3.2), dpi=120, ncols=2)
        for ax, action in zip(axes, ACTIONS):
            x = np.arange(len(groups))
            for k, which in enumerate(("found", "random")):
                es = [self.effect(action, which, g) for g in groups]
                vals = np.array([e["mean"] for e in es])
                err = np.array([[e["mean"] - e["lo"] for e in es], [e["hi"] - e["mean"] for e in es]])
                ax.bar(x + 0.4 * k - 0.2, np.nan_to_num(vals), 0.4, label=f"{which} neurons",
                       yerr=None if np.isnan(err).any() else err, capsize=3)
            ax.axhline(0, color="k", lw=0.5)
            ax.axhline(DAI_PUBLISHED[action], color="grey", ls="--", lw=0.8, label="Dai et al. (BERT)")
            ax.set_xticks(x, groups)
            ax.set_ylabel("change of p(true), %")
            ax.set_title(f"{action} (x{ACTIONS[action]:g})")
            ax.legend(fontsize=7)
        return fig

    def _layers_figure(self):
        fig, ax = new_figure((6, 2.6), dpi=120)
        ax.hist(self.neuron_table().layer, bins=np.arange(self.n_layers + 1) - 0.5)
        ax.set_xlabel("layer")
        ax.set_ylabel("found neurons")
        return fig

    def _effect_sentence(self, action: str, which: str, group: str) -> str:
        e = self.effect(action, which, group)
        verb = "Suppressing" if action == "suppress" else "Amplifying (x2)"
        return (f"{verb} the {'knowledge' if which == 'found' else 'random'} neurons changes p(true) on "
                f"{EFFECT_LABEL[group]} by {_ci_text(e['mean'], e['lo'], e['hi'])} (mean over {e['n']} facts, 95% "
                "bootstrap interval over facts)")

    def paper_comparison(self) -> str:
        """Where this run agrees and disagrees with Dai et al.'s BERT-base figures (held-out prompts when there
        are some, else the prompts that found the neurons)."""
        group = "heldout" if "heldout" in self.groups() else "selection"
        parts = []
        for action in ACTIONS:
            e = self.effect(action, "found", group)
            if e["n"] == 0:
                continue
            paper = DAI_PUBLISHED[action]
            if np.isnan(e["lo"]):
                verdict = "too few facts for an interval"
            elif (paper < 0 and e["hi"] < 0) or (paper > 0 and e["lo"] > 0):
                verdict = "the same direction as the paper"
            elif (paper < 0 and e["lo"] > 0) or (paper > 0 and e["hi"] < 0):
                verdict = "the opposite direction to the paper"
            else:
                verdict = "an interval that includes no change, so it does not reproduce the paper's effect"
            parts.append(f"{action} {_ci_text(e['mean'], e['lo'], e['hi'])} against the paper's {paper:+.1f} % "
                         f"({verdict})")
        return (f"Against Dai et al. (BERT-base: suppress {DAI_PUBLISHED['suppress']:+.1f} %, amplify "
                f"{DAI_PUBLISHED['amplify']:+.1f} %, random units about {DAI_PUBLISHED['random']:.1f} %), on "
                f"{EFFECT_LABEL[group]}: " + "; ".join(parts) + ".")

    def findings(self) -> list[Finding]:
        out = []
        empty = sum(not f.neurons for f in self.facts)
        out.append(self.finding("facts_without_neurons", f"{empty} of {len(self.facts)} fact(s) keep no neuron that "
                                f"is consistent across their prompts.", empty, "facts"))
        groups = self.groups()
        for group, suffix in (("selection", ""), ("heldout", "_heldout")):
            if group not in groups:
                continue
            for action, which in (("suppress", "found"), ("suppress", "random"), ("amplify", "found"),
                                  ("amplify", "random")):
                e = self.effect(action, which, group)
                out.append(self.finding(f"{action}_{which}{suffix}", self._effect_sentence(action, which, group) + ".",
                                        e["mean"], "percent"))
        if "unrelated" in groups:
            e = self.effect("suppress", "found", "unrelated")
            out.append(self.finding("suppress_found_unrelated", self._effect_sentence("suppress", "found", "unrelated")
                                    + ".", e["mean"], "percent"))
        if groups:
            e = self.effect("amplify", "found", "heldout" if "heldout" in groups else "selection")
            out.append(self.finding("paper_comparison", self.paper_comparison(), e["mean"], "percent"))
        return out

    def summary_markdown(self) -> str:
        t = self.control_table()
        pr = self.params
        tuned = any(f.tuned_on == "tune" for f in self.facts)
        lines = [f"# Knowledge neurons on {self.model}", "",
                 f"{len(self.facts)} fact(s); integrated gradients ({pr.steps} steps, baseline 0) over FFN units at "
                 f"the last token; a unit is kept per prompt at >= {pr.threshold} x the prompt's largest attribution, "
                 f"and per fact when kept in >= max(p x n, {pr.min_prompts}) of its n search prompts, p tuned per "
                 f"relation from {pr.p_start} in steps of {pr.p_step} (at most {pr.max_rounds} rounds) towards "
                 f"{pr.min_neurons}-{pr.max_neurons} neurons per fact on average"
                 + (" on the tuning part's facts, then applied unchanged to these (test) facts" if tuned else
                    " on these facts themselves") + "."
                 + (f" {pr.heldout} of each fact's prompts (drawn at random, seed {pr.seed}) are held out of the "
                    "search and used only by the controls." if pr.heldout else ""), ""]
        lines += ["| relation | facts | with neurons | p (tuned on) | mean neurons | "
                  + " | ".join(f"{a} {w} ({g})" for a in ACTIONS for g in self.groups() for w in ("found", "random"))
                  + " |", "|---" * (5 + 2 * len(ACTIONS) * len(self.groups())) + "|"]
        for r in self.relation_table().itertuples(index=False):
            r = r._asdict()
            p = "-" if r["p"] is None or (isinstance(r["p"], float) and np.isnan(r["p"])) else \
                f"{r['p']:g} ({'tuning part' if r['tuned_on'] == 'tune' else 'these facts'})"
            cells = [_ci_text(r[f"{a}_{w}_{g}_pct"], r[f"{a}_{w}_{g}_lo"], r[f"{a}_{w}_{g}_hi"])
                     if r[f"{a}_{w}_{g}_n"] else "-"
                     for a in ACTIONS for g in self.groups() for w in ("found", "random")]
            lines.append(f"| {escape(r['relation'])} | {r['facts']} | {r['with_neurons']} | {p} | "
                         f"{r['mean_neurons']:.1f} | " + " | ".join(cells) + " |")
        lines += ["", "Relative change of p(true) in %, mean over the facts with neurons (each fact's prompts of a "
                      "group averaged first; random units: the same count from the same layers, "
                      f"{pr.random_seeds} draws averaged), with a 95% bootstrap interval over facts.", ""]
        if self.groups():
            lines += [self.paper_comparison(), ""]
        lines += ["| relation | p rounds (p -> mean neurons per fact) |", "|---|---|"]
        for r in self.relations():
            steps = ", ".join(f"{h['p']}->{h['mean_count']:g}" for h in r["steps"])
            where = "tuning part" if r["tuned_on"] == "tune" else "these facts"
            lines.append(f"| {escape(r['relation']) if r['relation'] is not None else '-'} | {steps} ({where}) |")
        lines += ["", "| fact | search prompts | held out | neurons (layer:unit, score) | per-prompt counts |",
                  "|---|---|---|---|---|"]
        for f in self.facts:
            ns = ", ".join(f"L{l}:{u} ({s:.3g})" for l, u, s in f.neurons) or "none consistent"
            case = escape(f.case_id) if f.case_id is not None else "-"
            lines.append(f"| {case} ({escape(f.target)}) | {len(f.prompts)} | {len(f.heldout)} | {ns} | "
                         f"{f.per_prompt_counts} |")
        lines += ["", f"Per prompt group (relative %, mean delta p; prompts weighed alike); random = same count from "
                      f"the same layers, {self.params.random_seeds} seeds:", "",
                  "| intervention | neurons | " + " | ".join(GROUPS) + " |", "|---" * (2 + len(GROUPS)) + "|"]
        for action in ACTIONS:
            for which in ("found", "random"):
                cells = []
                for g in GROUPS:
                    r = t[(t.action == action) & (t.neurons == which) & (t.group == g)]
                    cells.append(f"{r.relative_pct.iloc[0]:+.1f} % ({r.delta.iloc[0]:+.4f})" if len(r) else "-")
                lines.append(f"| {action} | {which} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
