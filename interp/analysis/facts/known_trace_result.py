"""The averaged causal trace over ROME's known_1000 facts, reduced from the driver's parts file: the mean indirect
effect per (kind, token category, layer) over the known facts with 95% bootstrap intervals over facts, the paper's
figure (AIE by layer at the last subject token and the last token), findings and a summary beside the GPT-2 XL
values ALGORITHMS.md cites (Meng et al. 2022, Sec. 2 and Fig. 2).

`interp.analysis.facts.known_trace` traces the facts and builds this result (`build_result`, `write_result`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.analysis.facts.params import CATEGORIES, TraceParams
from interp.analysis.recall.stats import bootstrap_mean
from interp.analysis.result import Finding, ResultBase

SETTINGS = ("samples", "noise", "window", "seed")  # the TraceParams fields a parts file is bound to
KIND_LABEL = {"resid": "residual stream", "mlp": "MLP output", "attn": "attention output"}
# What /work/shared/ALGORITHMS.md (section 3) cites from the paper for GPT-2 XL over its known facts; nothing
# else of the paper's figure is quoted here (its per-layer values are not in our notes).
PAPER_GPT2_XL = (
    ("p_clean", "27.0 %"),
    ("p_corrupted", "8.47 %"),
    ("strongest single state", "last subject token, layer 15 of 48 (AIE 8.7 %)"),
    ("MLP", "effect peaks in early-middle layers at the last subject token"),
    ("attention", "matters at the last token in late layers"),
)


def settings_of(params: TraceParams) -> dict:
    return {k: getattr(params, k) for k in SETTINGS}


@dataclass(repr=False)
class KnownTraceResult(ResultBase):
    """The averaged trace over the known facts kept in a parts file."""

    model: str
    params: TraceParams
    seconds: float
    rows: list  # the visited facts' lines, in visiting order
    n_set: int
    n_layers: int
    command: str = ""
    n_boot: int = 1000

    @property
    def known(self) -> list[dict]:
        return [r for r in self.rows if r["known"]]

    def per_fact(self, kind: str, category: str) -> np.ndarray:
        """(n_known, n_layers) indirect effects, NaN rows where the fact has no token of the category."""
        return np.array([[np.nan if v is None else v for v in r["effects"][kind][category]] for r in self.known],
                        dtype=float).reshape(len(self.known), self.n_layers)

    def averaged(self) -> pd.DataFrame:
        """Mean indirect effect per (kind, category, layer) over the known facts, with its 95% bootstrap interval
        over facts and the number of facts that have a token of the category."""
        if getattr(self, "_averaged", None) is None:
            self._averaged = self._average()
        return self._averaged

    def _average(self) -> pd.DataFrame:
        rows = []
        for kind in self.params.kinds:
            for cat in CATEGORIES:
                arr = self.per_fact(kind, cat)
                n = int((~np.isnan(arr[:, 0])).sum()) if len(arr) else 0
                for layer in range(self.n_layers):
                    col = arr[:, layer]
                    lo, hi = bootstrap_mean(col, n_boot=self.n_boot, seed=self.params.seed)
                    rows.append({"kind": kind, "category": cat, "layer": layer,
                                 "aie": float(np.nanmean(col)) if n else np.nan, "lo": lo, "hi": hi, "n_facts": n})
        return pd.DataFrame(rows)

    def fact_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"order": i, "known_id": r["known_id"], "relation_id": r["relation_id"],
                              "subject": r["subject"], "target": r["target"], "known": r["known"],
                              "p_clean": r.get("p_clean"), "p_corrupted": r.get("p_corrupted"),
                              "seconds": r["seconds"], "cpu_seconds": r.get("cpu_seconds"), "load1": r["load1"],
                              "commit": r["commit"]}
                             for i, r in enumerate(self.rows)])

    def _mean_ci(self, key: str) -> tuple[float, float, float]:
        x = [r[key] for r in self.known]
        return (float(np.mean(x)) if x else np.nan, *bootstrap_mean(x, n_boot=self.n_boot, seed=self.params.seed))

    def peak(self, kind: str, category: str | None = None) -> dict:
        """The largest AIE of a kind (at one category, or over all), with its interval and n."""
        avg = self.averaged()
        sub = avg[(avg.kind == kind) & avg.aie.notna() & ((avg.category == category) if category else True)]
        top = sub.loc[sub.aie.idxmax()]
        return {"category": top.category, "layer": int(top.layer), "aie": float(top.aie), "lo": float(top.lo),
                "hi": float(top.hi), "n_facts": int(top.n_facts)}

    def comparison(self) -> pd.DataFrame:
        """Our numbers beside what ALGORITHMS.md cites from the paper for GPT-2 XL (48 layers)."""
        cited = dict(PAPER_GPT2_XL)
        n = len(self.known)
        pc, pc_lo, pc_hi = self._mean_ci("p_clean")
        pk, pk_lo, pk_hi = self._mean_ci("p_corrupted")
        res, mlp = self.peak("resid"), self.peak("mlp", "last_subject")
        attn = self.peak("attn", "last")
        mlp_last = self.peak("mlp", "last")
        attn_subj = self.peak("attn", "last_subject")
        L = self.n_layers

        res_subject = self.peak("resid", "last_subject")

        def pct(x, lo, hi):
            return f"{100 * x:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}]"

        def at(pk):
            return (f"{pk['category'].replace('_', ' ')} token, layer {pk['layer']} of {L} (depth "
                    f"{pk['layer'] / L:.2f}), AIE {pct(pk['aie'], pk['lo'], pk['hi'])}")

        rows = [
            ("p_clean (mean over known facts)", pct(pc, pc_lo, pc_hi), cited["p_clean"]),
            ("p_corrupted (mean)", pct(pk, pk_lo, pk_hi), cited["p_corrupted"]),
            ("residual at the last subject token: peak", at(res_subject),
             cited["strongest single state"] + f" (depth {15 / 48:.2f})"),
            ("residual, any token: peak", at(res), "(not cited)"),
            ("MLP at the last subject token: peak", at(mlp), cited["MLP"]),
            ("MLP at the last token: peak", at(mlp_last), "(not cited)"),
            ("attention at the last token: peak", at(attn), cited["attention"]),
            ("attention at the last subject token: peak", at(attn_subj), "(not cited)"),
        ]
        return pd.DataFrame([{"quantity": q, f"{self.model} (n={n})": ours, "GPT-2 XL (paper, as cited)": p}
                             for q, ours, p in rows])

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"averaged_effects": self.averaged(), "facts": self.fact_table(), "comparison": self.comparison()}

    def figures(self) -> dict:
        return {"aie_by_layer": self._line_figure()}

    def _line_figure(self):
        from interp.figures import new_figure

        avg = self.averaged()
        fig, axes = new_figure((13, 3.4), dpi=120, ncols=3)
        colors = {"last_subject": "tab:green", "last": "tab:red"}
        for ax, kind in zip(axes, ("resid", "mlp", "attn")):
            for cat in ("last_subject", "last"):
                g = avg[(avg.kind == kind) & (avg.category == cat)]
                ax.plot(g.layer, g.aie, color=colors[cat], label=f"{cat.replace('_', ' ')} token")
                ax.fill_between(g.layer, g.lo, g.hi, color=colors[cat], alpha=0.2)
            ax.axvline(15 / 48 * self.n_layers, color="grey", ls=":", lw=1)
            ax.axhline(0, color="black", lw=0.5)
            ax.set_xlabel("layer" + ("" if kind == "resid" else " (centre of a 10-layer window)"))
            ax.set_title(f"{KIND_LABEL[kind]}: AIE on p(answer)", fontsize=9)
            ax.legend(fontsize=7, loc="upper left")
        axes[0].set_ylabel(f"AIE, {len(self.known)} known facts (95% bootstrap)")
        fig.suptitle(f"{self.model}, known_1000 (partial: {len(self.known)} known of {len(self.rows)} visited). "
                     "Dotted: GPT-2 XL's strongest state, layer 15 of 48, at the same depth.", fontsize=9)
        fig.tight_layout()
        return fig

    def to_json(self) -> dict:
        return {"model": self.model, "n_set": self.n_set, "n_visited": len(self.rows), "n_known": len(self.known),
                "settings": settings_of(self.params), "seconds": self.seconds,
                "seconds_per_known_fact": self.seconds_per_known(),
                "cpu_seconds_per_known_fact": self.seconds_per_known("cpu_seconds"),
                "load1_mean": float(np.mean([r["load1"] for r in self.rows])),
                "commits": sorted({r["commit"] for r in self.rows}), "command": self.command,
                "peaks": {"resid": self.peak("resid"), "mlp_last_subject": self.peak("mlp", "last_subject"),
                          "attn_last": self.peak("attn", "last")} if self.known else {},
                "paper_gpt2_xl_as_cited": dict(PAPER_GPT2_XL)}

    def seconds_per_known(self, key: str = "seconds") -> float:
        """Mean wall-clock (or, key="cpu_seconds", CPU) seconds per known fact, over the facts that record it."""
        x = [r[key] for r in self.known if r.get(key) is not None]
        return float(np.mean(x)) if x else np.nan

    def _cpu_text(self) -> str:
        n = sum(r.get("cpu_seconds") is not None for r in self.known)
        if not n:
            return "CPU time not recorded by the commits that made these rows"
        return f"CPU {self.seconds_per_known('cpu_seconds'):.1f} s over the {n} facts that record it"

    def findings(self) -> list[Finding]:
        if not self.known:
            return []
        n = len(self.known)
        out = []
        for key, pk in (("mlp", self.peak("mlp", "last_subject")), ("attn", self.peak("attn", "last"))):
            out.append(self.finding(
                f"known1000_peak_{key}", f"Over {n} known facts of known_1000, the {KIND_LABEL[key]} at the "
                f"{pk['category'].replace('_', ' ')} token matters most at layer {pk['layer']} of {self.n_layers} "
                f"(AIE {pk['aie']:.4f}, 95% CI [{pk['lo']:.4f}, {pk['hi']:.4f}]).", pk["layer"], "layer"))
        return out

    def summary_markdown(self) -> str:
        n, v = len(self.known), len(self.rows)
        lines = [f"# Averaged causal tracing on known_1000: {self.model}", "",
                 f"**{'Partial' if v < self.n_set else 'Complete'}:** {v} of the file's {self.n_set} facts visited "
                 f"in a seeded random order (seed {self.params.seed}); the model knows {n} of them (its greedy next "
                 "token is the true attribute's first token), and only those are traced and averaged. Settings: "
                 f"{self.params.samples} noise samples, noise {self.params.noise} x sigma (sigma over every subject "
                 f"of the file), window {self.params.window}. Intervals: 95% bootstrap over facts ({self.n_boot} "
                 "resamples).", "",
                 f"Command: `{self.command}`", "",
                 f"Compute: {self.seconds:.0f} s wall-clock in all; {self.seconds_per_known():.1f} s per known fact "
                 f"(mean; {self._cpu_text()}), on one thread at low priority (nice 10-19), 1-minute load average "
                 f"{np.mean([r['load1'] for r in self.rows]):.2f} (mean over facts; 2 cores).", ""]
        if n:
            t = self.comparison()
            cols = list(t.columns)
            lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in t.itertuples(index=False)]
            lines += ["", "The GPT-2 XL column is what /work/shared/ALGORITHMS.md (section 3) cites from the paper "
                      "(Meng et al. 2022, over its known facts); the paper's per-layer curves are not quoted. "
                      "Depth = layer / number of layers. Ours in percent of p(answer), as the paper's. Restoring the "
                      "residual at the last token in the top layers restores the prediction itself, so that row is "
                      "large by construction.", "", "![AIE by layer](figures/aie_by_layer.png)"]
        return "\n".join(lines)
