"""What the knowledge-neuron search returns: its neurons, refinement rounds, control effects with intervals over
facts, figures, findings and a summary set beside Dai et al.'s published BERT figures.

See `interp.analysis.facts.neurons` (Dai et al. 2022) for the method and `interp.analysis.facts.neuron_controls`
for the suppress / amplify controls; causal tracing's result is `interp.analysis.facts.result.TraceResult`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.analysis.facts.neuron_controls import ACTIONS, GROUPS
from interp.analysis.facts.neurons import FactNeurons
from interp.analysis.facts.params import NEURON_FLAGS, NeuronParams
from interp.analysis.recall.stats import bootstrap_mean
from interp.analysis.result import Finding, ResultBase
from interp.figures import new_figure
from interp.markdown import escape

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
