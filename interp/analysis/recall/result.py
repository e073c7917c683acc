"""The result of a lost-in-the-middle sweep: tables, the U-curve and attention figures, a Markdown summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from interp.analysis.recall.params import CLI_FLAGS, RecallParams
from interp.analysis.result import Finding, ResultBase
from interp.figures import new_figure


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


@dataclass(repr=False)
class RecallResult(ResultBase):
    """Per-example scores, per-point curves with 95% intervals, retrieval heads and their correlation."""

    model: str
    params: RecallParams
    seconds: float
    examples: pd.DataFrame  # one row per scored prompt
    curves: pd.DataFrame  # one row per (condition, n_items, gold_position)
    heads: pd.DataFrame  # top retrieval heads (baseline prompts)
    attention_by_position: pd.DataFrame
    correlations: pd.DataFrame  # r of retrieval-head gold mass with each metric, across positions
    mitigations: pd.DataFrame = field(default_factory=pd.DataFrame)
    heatmap: dict = field(default_factory=dict)
    command: str = ""

    cli_name = "lost-in-middle"
    cli_flags = CLI_FLAGS

    @property
    def model_name(self) -> str:  # the field's name before every result used `model`
        return self.model

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"examples": self.examples, "curves": self.curves, "retrieval_heads": self.heads,
               "attention_by_position": self.attention_by_position, "correlations": self.correlations}
        if not self.mitigations.empty:
            out["mitigations"] = self.mitigations
        return out

    def to_json(self) -> dict:
        curves = []
        for r in self.curves.itertuples():
            curves.append({
                "condition": r.condition, "n_items": int(r.n_items), "gold_position": int(r.gold_position),
                "accuracy": _num(r.accuracy), "accuracy_ci": [_num(r.accuracy_lo), _num(r.accuracy_hi)],
                "choice_accuracy": _num(r.choice_accuracy),
                "choice_accuracy_ci": [_num(r.choice_accuracy_lo), _num(r.choice_accuracy_hi)],
                "logprob": _num(r.logprob),
                "logprob_ci": [_num(r.logprob_lo), _num(r.logprob_hi)], "median_rank": _num(r.median_rank),
                "n": int(r.n),
            })
        return {
            "model": self.model, "seconds": self.seconds, "task": self.params.task, "file": self.params.file,
            "seed": self.params.seed,
            "curves": curves,
            "retrieval_heads": [{"layer": int(h.layer), "head": int(h.head), "gold_mass": float(h.gold_mass),
                                 "distractor_mass": float(h.distractor_mass)} for h in self.heads.itertuples()],
            "correlations": [{k: (_num(v) if isinstance(v, float) else v) for k, v in row.items()}
                             for row in self.correlations.to_dict("records")],
            "mitigations": self.mitigations.to_dict("records"),
        }

    # -- figures -------------------------------------------------------------------------------------
    def figures(self) -> dict:
        out = {"u_curve": self._u_curve("baseline")}
        if not self.mitigations.empty:
            out["mitigations"] = self._mitigation_figure()
        if self.heatmap:
            out["attention_heatmap"] = self._heatmap()
        return out

    def _accuracy_column(self) -> str:
        return "accuracy" if self.curves["accuracy"].notna().any() else "choice_accuracy"

    def _u_curve(self, condition: str):
        acc = self._accuracy_column()
        fig, axes = new_figure((11, 4), dpi=120, ncols=2)
        groups = list(self.curves[self.curves["condition"] == condition].groupby("n_items"))
        for i, (k, g) in enumerate(groups):
            x = g["gold_position"] + 1 + 0.12 * (i - (len(groups) - 1) / 2)  # dodged, so the intervals stay apart
            n_lo, n_hi = int(g["n"].min()), int(g["n"].max())
            label = f"{k} items, n = {n_lo}" + (f"-{n_hi}" if n_hi != n_lo else "") + " per point"
            for ax, col in zip(axes, (acc, "logprob")):
                y, lo, hi = g[col].to_numpy(float), g[f"{col}_lo"].to_numpy(float), g[f"{col}_hi"].to_numpy(float)
                ax.errorbar(x, y, yerr=np.stack([y - lo, hi - y]), marker="o", capsize=3, label=label)
        if acc == "choice_accuracy":
            for k in sorted(self.curves["n_items"].unique()):
                axes[0].axhline(1 / k, ls=":", color="grey", lw=0.8)
        axes[0].set_ylabel(acc.replace("_", " ") + " (95% Wilson)")
        axes[1].set_ylabel("log p(answer) (95% bootstrap)")
        for ax in axes:
            ax.set_xlabel("position of the gold item (1 = first)")
            ax.legend()
        fig.suptitle(f"{self.model}: {self.params.task}, recall by gold position ({condition})")
        return fig

    def _mitigation_figure(self):
        acc = self._accuracy_column()
        sizes = sorted(self.curves["n_items"].unique())
        fig, axes = new_figure((4.5 * len(sizes), 3.8), dpi=120, ncols=len(sizes), squeeze=False)
        for ax, k in zip(axes[0], sizes):
            for cond, g in self.curves[self.curves["n_items"] == k].groupby("condition"):
                x = g["gold_position"] + 1
                line, = ax.plot(x, g[acc], marker="o", label=cond)
                ax.fill_between(x, g[f"{acc}_lo"], g[f"{acc}_hi"], color=line.get_color(), alpha=0.15)
            ax.set_title(f"{k} items")
            ax.set_xlabel("gold position")
            ax.set_ylabel(acc.replace("_", " "))
            ax.legend(fontsize=8)
        return fig

    def _heatmap(self):
        h = self.heatmap
        fig, axes = new_figure((11, 5), dpi=120, ncols=2)
        im = axes[0].imshow(h["head_score"], aspect="auto", cmap="RdBu_r",
                            vmin=-np.abs(h["head_score"]).max(), vmax=np.abs(h["head_score"]).max())
        axes[0].set(xlabel="head", ylabel="layer", title="gold - mean distractor attention mass")
        fig.colorbar(im, ax=axes[0])
        im = axes[1].imshow(h["position_layer"].T, aspect="auto", cmap="viridis")
        axes[1].set_xticks(range(len(h["positions"])), [str(p + 1) for p in h["positions"]])
        axes[1].set(xlabel="gold position", ylabel="layer", title="attention mass on gold (sum over heads)")
        fig.colorbar(im, ax=axes[1])
        fig.suptitle(f"{self.model}: attention where the answer is predicted, {h['n_items']} items (baseline)")
        return fig

    # -- text ----------------------------------------------------------------------------------------
    def curve_table(self) -> str:
        """The curves as a Markdown table: one row per (condition, size, gold position), each metric with its
        95% interval (Wilson for accuracies, percentile bootstrap for log p) and the point's n."""
        cols = [c for c in ("accuracy", "choice_accuracy", "logprob") if self.curves[c].notna().any()]
        lines = ["| condition | items | gold position | n | "
                 + " | ".join(c.replace("_", " ") + " [95% CI]" for c in cols) + " |",
                 "|---|---|---|---|" + "---|" * len(cols)]
        for r in self.curves.sort_values(["condition", "n_items", "gold_position"]).to_dict("records"):
            cells = [f"{r[c]:.2f} [{r[c + '_lo']:.2f}, {r[c + '_hi']:.2f}]" for c in cols]
            lines.append(f"| {r['condition']} | {r['n_items']} | {r['gold_position'] + 1} | {r['n']} | "
                         + " | ".join(cells) + " |")
        return "\n".join(lines)

    def summary_markdown(self) -> str:
        p = self.params
        n = self.curves["n"].min()
        parts = [f"## Lost in the middle: {self.model}, task {p.task}", "",
                 f"{len(self.examples)} prompts ({n}+ per point, seed {p.seed}); intervals are 95%: Wilson for "
                 f"accuracies, percentile bootstrap over examples for log p; accuracy = greedy answer "
                 f"contains the gold answer (first line); choice accuracy (KV) = gold value's first token beats "
                 f"every other value in the context (chance 1/k); log p = teacher-forced answer log-probability.",
                 "", self.curve_table(), ""]
        if not self.heads.empty:
            top = ", ".join(f"L{r.layer}H{r.head} ({r.gold_mass:.3f} vs {r.distractor_mass:.3f})"
                            for r in self.heads.head(5).itertuples())
            parts += [f"Top retrieval heads (attention mass at the position predicting the answer, on the gold "
                      f"item vs a distractor item): {top}.", ""]
        for r in self.correlations.itertuples():
            if math.isnan(r.r):
                parts.append(f"- {r.condition}, {r.n_items} items: {r.metric} is constant across positions "
                             "(no correlation to measure)")
                continue
            parts.append(f"- {r.condition}, {r.n_items} items: r(retrieval-head gold mass, {r.metric}) across "
                         f"{r.n_positions} positions = {r.r:.2f} [95% CI {r.r_lo:.2f}, {r.r_hi:.2f}]")
        if not self.mitigations.empty:
            parts.append("")
            for r in self.mitigations.itertuples():
                parts.append(f"- {r.condition}, {r.n_items} items: mean change in accuracy "
                             f"{r.delta_accuracy:+.2f}, choice accuracy {r.delta_choice_accuracy:+.2f}, "
                             f"log p {r.delta_logprob:+.2f} (at the baseline's worst position "
                             f"{r.worst_position + 1}: {r.delta_logprob_at_worst:+.2f})")
        return "\n".join(parts) + "\n"

    def findings(self) -> list[Finding]:
        base = self.curves[self.curves["condition"] == "baseline"]
        out = []
        for k, g in base.groupby("n_items"):
            best, worst = g.loc[g["logprob"].idxmax()], g.loc[g["logprob"].idxmin()]
            out.append(self.finding(
                f"logprob_range_{int(k)}", f"With {int(k)} items, log p(answer) is highest with the gold item at "
                f"position {int(best.gold_position) + 1} ({best.logprob:.2f}) and lowest at position "
                f"{int(worst.gold_position) + 1} ({worst.logprob:.2f}).", float(best.logprob - worst.logprob), "nats"))
        if not self.heads.empty:
            top = ", ".join(f"L{r.layer}H{r.head} ({r.gold_mass:.3f} vs {r.distractor_mass:.3f})"
                            for r in self.heads.head(5).itertuples())
            out.append(self.finding("top_retrieval_head",
                                    "Top retrieval heads (attention mass at the answer position on the "
                                    f"gold item vs a distractor item): {top}.", float(self.heads.iloc[0].gold_mass),
                                    "attention"))
        for r in self.correlations.itertuples():
            if r.condition == "baseline" and r.metric == "logprob" and not math.isnan(r.r):
                out.append(self.finding(f"head_recall_r_{int(r.n_items)}", f"Retrieval-head gold mass tracks log p "
                                        f"across positions at {int(r.n_items)} items: r = {r.r:.2f}.", float(r.r), "r"))
        return out
