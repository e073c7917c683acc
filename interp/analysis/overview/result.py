"""The overview's result: predictions and the logit lens, as tables, a figure, findings and a summary."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from interp.analysis.overview.params import CLI_FLAGS, OverviewParams
from interp.analysis.result import Finding, ResultBase
from interp.figures import finish_logit_lens_axes, new_figure
from interp.markdown import escape


@dataclass(repr=False)
class OverviewResult(ResultBase):
    model: str
    params: OverviewParams
    seconds: float
    config: dict
    predictions: pd.DataFrame  # prompt, rank, token, prob
    logit_lens: pd.DataFrame  # prompt, layer, top_token, prob, answer_prob, answer_rank
    command: str = ""

    cli_name = "overview"
    cli_flags = CLI_FLAGS

    def to_json(self) -> dict:
        return {"model": self.model, "seconds": self.seconds, "config": self.config,
                "predictions": self.predictions.to_dict(orient="records"),
                "logit_lens": self.logit_lens.to_dict(orient="records")}

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"predictions": self.predictions, "logit_lens": self.logit_lens}

    def figures(self) -> dict:
        fig, ax = new_figure((6.5, 3.4), dpi=110)
        for prompt, rows in self.logit_lens.groupby("prompt", sort=False):
            ax.plot(rows.layer, rows.answer_prob, marker="o", ms=3, label=f"{prompt} → {self._top(prompt).token!r}")
        finish_logit_lens_axes(ax, "p(final answer) under the logit lens")
        return {"logit_lens": fig}

    def _top(self, prompt: str):
        return self.predictions[(self.predictions.prompt == prompt) & (self.predictions["rank"] == 1)].iloc[0]

    def findings(self) -> list[Finding]:
        out = []
        for i, (prompt, _rows) in enumerate(self.logit_lens.groupby("prompt", sort=False)):
            top = self._top(prompt)
            out.append(self.finding(f"top_next_{i}",
                                    f"{escape(repr(prompt))} → {escape(repr(top.token))} with p = {top.prob:.3f}.",
                                    float(top.prob), "probability"))
        return out

    def summary_markdown(self) -> str:
        c = self.config
        lines = []
        for prompt, rows in self.logit_lens.groupby("prompt", sort=False):
            top = self._top(prompt)
            first = rows[rows.answer_rank == 0].layer
            depth = (f"first top-1 under the logit lens after layer {int(first.iloc[0])}" if len(first)
                     else "never top-1 before the last layer")
            lines.append(f"- {escape(repr(prompt))} → {escape(repr(top.token))} with p = {top.prob:.3f}; {depth} of "
                         f"{c['n_layers']}.")
        lines += ["", f"**{self.model}**: {c['n_layers']} layers, d_model {c['d_model']}, {c['n_heads']} query heads "
                  f"({c['n_kv_heads']} key/value), d_mlp {c['d_mlp']}, vocabulary {c['d_vocab']}."]
        return "\n".join(lines)
