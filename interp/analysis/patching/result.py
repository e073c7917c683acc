"""`interp patch`'s result: the normalised grid per method, a heatmap, the strongest cells and findings."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from interp.analysis.patching.params import CLI_FLAGS, PatchParams
from interp.analysis.result import Finding, ResultBase
from interp.figures import new_figure
from interp.markdown import escape
from interp.patching.result import PatchResult


@dataclass(repr=False)
class PatchReport(ResultBase):
    model: str
    params: PatchParams
    seconds: float
    results: dict[str, PatchResult]  # method -> result
    tokens: list[str]  # the clean prompt's tokens (the pos axis)
    spearman: float | None = None  # rank agreement of attribution with activation patching, with "both"
    command: str = ""

    cli_name = "patch"
    cli_flags = CLI_FLAGS

    def _top(self, method: str, k: int = 5) -> pd.DataFrame:
        frame = self.tables()[method]
        return frame.reindex(frame.normalized.abs().sort_values(ascending=False).index).head(k)

    def to_json(self) -> dict:
        first = next(iter(self.results.values()))
        return {"model": self.model, "seconds": self.seconds, "kind": self.params.kind, "tokens": self.tokens,
                "clean_logit_diff": float(first.clean.mean()), "corrupted_logit_diff": float(first.corrupted.mean()),
                "spearman_attribution_vs_activation": self.spearman,
                "methods": {m: {"dims": list(r.dims), "normalized": r.normalized().tolist(),
                                "top": self._top(m).to_dict(orient="records")} for m, r in self.results.items()}}

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {}
        for method, r in self.results.items():
            frame = r.to_frame().drop(columns=["pair"]).drop_duplicates(subset=list(r.dims))
            if "pos" in frame:
                frame.insert(frame.columns.get_loc("pos") + 1, "token", [self.tokens[p] for p in frame.pos])
            out[method] = frame.reset_index(drop=True)
        return out

    def figures(self) -> dict:
        figs = {}
        for method, r in self.results.items():
            grid = r.normalized()
            if grid.dim() == 3:  # (layer, pos, head): the strongest head per cell
                grid = grid.abs().amax(-1)
            fig, ax = new_figure((max(4.0, 0.45 * grid.shape[1] + 2), 0.22 * grid.shape[0] + 1.8))
            limit = float(grid.abs().max()) or 1.0
            image = ax.imshow(grid.numpy(), aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, origin="lower")
            ax.set_ylabel("layer")
            if r.dims[1] == "pos":
                ax.set_xticks(range(len(self.tokens)), [repr(t)[1:-1] for t in self.tokens], rotation=60, fontsize=7)
            else:
                ax.set_xlabel("head")
            ax.set_title(f"{method} patching, {r.kind} (0 = corrupted, 1 = clean)", fontsize=9)
            fig.colorbar(image, ax=ax, fraction=0.04)
            figs[f"{method}_{r.kind}"] = fig
        return figs

    def findings(self) -> list[Finding]:
        out = []
        for method in self.results:
            best = self._top(method, 1).iloc[0]
            where = ", ".join(f"{d} {int(best[d])}" for d in self.results[method].dims)
            out.append(self.finding(f"{method}_top_cell", f"{method.capitalize()} patching: the strongest cell is "
                                    f"{where}, restoring {best.normalized:.2f} of the logit difference.",
                                    float(best.normalized), "fraction"))
        if self.spearman is not None:
            out.append(self.finding("spearman", f"Attribution ranks the cells as activation patching does with "
                                    f"Spearman rho = {self.spearman:.2f}.", self.spearman, "rho"))
        return out

    def summary_markdown(self) -> str:
        first = next(iter(self.results.values()))
        lines = [f"Patching `{self.params.kind}` of **{self.model}**, {self.params.direction}: logit difference "
                 f"{escape(repr(self.params.answer))} - {escape(repr(self.params.wrong))} "
                 f"is {float(first.clean.mean()):.2f} on the clean "
                 f"prompt and {float(first.corrupted.mean()):.2f} on the corrupted one.", ""]
        lines += [f"- {f.text}" for f in self.findings()]
        return "\n".join(lines)
