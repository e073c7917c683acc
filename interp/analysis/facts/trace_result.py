"""Running causal tracing over a prompt and a fact set, and what comes out: tables, figures, summary.

See `interp.analysis.facts.causal_trace` for the method (Meng et al. 2022). `run_trace` traces one
prompt at every token (the token x layer heatmaps of the paper's Figure 1) and, given facts, each fact at
the paper's key tokens only (first / middle / last subject token, first subsequent token, last token),
averaging the indirect effects over facts (its Figure 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from interp.analysis.facts.causal_trace import (
    CATEGORIES,
    FactTrace,
    Progress,
    TraceParams,
    case_noise,
    embedding_std,
    prepare_case,
    trace_case,
)
from interp.figures import save_figure

KIND_LABEL = {"resid": "residual stream (block output)", "mlp": "MLP output", "attn": "attention output"}
CATEGORY_LABEL = {"first_subject": "first subject token", "middle_subject": "middle subject tokens",
                  "last_subject": "last subject token", "first_subsequent": "first subsequent token",
                  "last": "last token"}


@dataclass
class TraceResult:
    model: str
    params: TraceParams
    sigma: float
    single: FactTrace  # traced at every token
    facts: list[FactTrace]  # traced at the key tokens (empty without a fact set)

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

    def averaged_peaks(self) -> dict:
        """Per kind: the (category, layer) of the largest AIE, and the peak layer at each category."""
        avg = self.averaged()
        out = {}
        for kind in self.params.kinds:
            sub = avg[(avg.kind == kind) & avg.aie.notna()]
            best = sub.loc[sub.aie.idxmax()]
            by_cat = {c: {"layer": int(g.loc[g.aie.idxmax(), "layer"]), "aie": float(g.aie.max())}
                      for c, g in sub.groupby("category", sort=False)}
            out[kind] = {"category": best.category, "layer": int(best.layer), "aie": float(best.aie),
                         "by_category": by_cat}
        return out

    def to_json(self) -> dict:
        tr = self.single
        out = {"model": self.model, "prompt": tr.case.prompt.replace("{}", tr.case.subject),
               "subject": tr.case.subject, "target": tr.case.target, "p_clean": tr.p_clean,
               "p_corrupted": tr.p_corrupted, "sigma": self.sigma, "noise": self.params.noise,
               "samples": self.params.samples, "window": self.params.window, "seed": self.params.seed,
               "tokens": tr.case.str_tokens, "peak": self.peaks()}
        if self.facts:
            avg = self.averaged()
            out["averaged"] = {
                "n_facts": len(self.facts),
                "p_clean": float(np.mean([f.p_clean for f in self.facts])),
                "p_corrupted": float(np.mean([f.p_corrupted for f in self.facts])),
                "peak": self.averaged_peaks(),
                "effects": {k: {c: avg[(avg.kind == k) & (avg.category == c)].aie.tolist() for c in CATEGORIES}
                            for k in self.params.kinds},
            }
        return out

    # --- figures and summary ------------------------------------------------------------------------
    def save_figures(self, out_dir: Path) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out_dir = Path(out_dir)
        paths = []
        tr = self.single
        labels = [t + ("*" if tr.case.subject_start <= p < tr.case.subject_end else "")
                  for p, t in zip(tr.positions, (tr.case.str_tokens[q] for q in tr.positions))]
        cmaps = {"resid": "Purples", "mlp": "Greens", "attn": "Reds"}
        for kind in self.params.kinds:
            fig, ax = plt.subplots(figsize=(7, 0.35 * len(labels) + 1.5))
            im = ax.imshow(tr.scores[kind], aspect="auto", cmap=cmaps[kind], interpolation="nearest")
            ax.set_yticks(range(len(labels)), [repr(s)[1:-1] for s in labels])
            ax.set_xlabel("layer" + ("" if kind == "resid" else f" (centre of a {self.params.window}-layer window)"))
            ax.set_title(f"Restoring {KIND_LABEL[kind]}: p({tr.case.target!r})\n"
                         f"clean {tr.p_clean:.3f}, corrupted {tr.p_corrupted:.3f} (* = subject)", fontsize=9)
            fig.colorbar(im, ax=ax)
            paths.append(save_figure(fig, out_dir / f"trace_{kind}.png", dpi=120))
        if self.facts:
            avg = self.averaged()
            kinds = self.params.kinds
            fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3), squeeze=False)
            for ax, kind in zip(axes[0], kinds):
                grid = np.array([avg[(avg.kind == kind) & (avg.category == c)].aie.to_numpy() for c in CATEGORIES])
                im = ax.imshow(grid, aspect="auto", cmap=cmaps[kind], interpolation="nearest")
                ax.set_yticks(range(len(CATEGORIES)), [CATEGORY_LABEL[c] for c in CATEGORIES], fontsize=8)
                ax.set_xlabel("layer")
                ax.set_title(f"AIE, {KIND_LABEL[kind]} ({len(self.facts)} facts)", fontsize=9)
                fig.colorbar(im, ax=ax)
            paths.append(save_figure(fig, out_dir / "averaged_effects.png", dpi=120))
        return paths

    def summary_markdown(self) -> str:
        tr = self.single
        lines = [f"# Causal tracing on {self.model}", "",
                 f"Prompt: `{tr.case.prompt.replace('{}', tr.case.subject)}` (subject `{tr.case.subject}`), answer "
                 f"`{tr.case.target}`. Noise {self.params.noise} x sigma = {self.params.noise * self.sigma:.4f} on "
                 f"the subject embeddings, {self.params.samples} samples (seed {self.params.seed}), window "
                 f"{self.params.window}.", "",
                 f"p_clean = {tr.p_clean:.3f}, p_corrupted = {tr.p_corrupted:.3f}.", "",
                 "| kind | peak token | peak layer | p restored | indirect effect |", "|---|---|---|---|---|"]
        for kind, pk in self.peaks().items():
            lines.append(f"| {kind} | `{pk['token']}` (#{pk['position']}) | {pk['layer']} | {pk['p']:.3f} | {pk['ie']:+.3f} |")
        if self.facts:
            j = self.to_json()["averaged"]
            lines += ["", f"## Average over {j['n_facts']} facts", "",
                      f"Mean p_clean = {j['p_clean']:.3f}, mean p_corrupted = {j['p_corrupted']:.3f}.", "",
                      "Peak layer (and AIE) of each kind at each token category:", "",
                      "| kind | " + " | ".join(CATEGORY_LABEL[c] for c in CATEGORIES) + " |",
                      "|---" * (len(CATEGORIES) + 1) + "|"]
            for kind, pk in j["peak"].items():
                cells = [f"{pk['by_category'][c]['layer']} ({pk['by_category'][c]['aie']:+.3f})"
                         if c in pk["by_category"] else "-" for c in CATEGORIES]
                lines.append(f"| {kind} | " + " | ".join(cells) + " |")
            lines += ["", "Strongest averaged effect: " + "; ".join(
                f"{k} at the {CATEGORY_LABEL[pk['category']]}, layer {pk['layer']} (AIE {pk['aie']:+.3f})"
                for k, pk in j["peak"].items()) + "."]
        return "\n".join(lines) + "\n"


def run_trace(model, params: TraceParams, progress: Progress = None) -> TraceResult:
    """Trace params.prompt at every token, and each of params.facts at its key tokens."""
    sigma = params.sigma if params.sigma is not None else embedding_std(model)
    case = prepare_case(model, params.prompt, params.subject, params.target)
    single = trace_case(model, case, case_noise(model, case, params, sigma), params, progress=progress)
    traces = []
    facts = params.facts
    for fact in (progress(facts, desc="facts") if progress and facts else facts):
        fc = prepare_case(model, fact.prompt, fact.subject, fact.target_true, case_id=fact.case_id)
        if fc.prompt == case.prompt and fc.subject == case.subject and fc.answer_id == case.answer_id:
            traces.append(single)  # already traced at every token
            continue
        keys = sorted({q for qs in fc.category_positions().values() for q in qs})
        traces.append(trace_case(model, fc, case_noise(model, fc, params, sigma), params, positions=keys))
    return TraceResult(getattr(model.cfg, "name", "model"), params, sigma, single, traces)
