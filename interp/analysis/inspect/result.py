"""`InspectResult`: the config, the top next tokens and the logit-lens table of one prompt."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from interp.analysis.inspect.params import CLI_FLAGS, InspectParams
from interp.analysis.result import Finding, ResultBase
from interp.markdown import escape
from interp.model.processing import Processing


@dataclass(repr=False)
class InspectResult(ResultBase):
    model: str
    params: InspectParams
    seconds: float
    config: dict
    tokens: list[str]
    top_next: list[dict]  # [{"token", "id", "prob"}]
    logit_lens: pd.DataFrame  # layer, top_token, prob, answer_prob, answer_rank
    command: str = ""

    cli_name = "inspect"
    cli_flags = CLI_FLAGS

    @property
    def prompt(self) -> str:
        return self.params.prompt

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "prompt": self.prompt,
            "config": self.config,
            "tokens": self.tokens,
            "top_next": self.top_next,
            "logit_lens": self.logit_lens.to_dict(orient="records"),
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"top_next": pd.DataFrame(self.top_next, columns=["token", "id", "prob"]), "logit_lens": self.logit_lens}

    def figures(self) -> dict:
        from interp.figures import finish_logit_lens_axes, new_figure

        fig, ax = new_figure((6.0, 3.2), dpi=110)
        lens = self.logit_lens
        answer = self.top_next[0]["token"]
        ax.plot(lens.layer, lens.answer_prob, marker="o", ms=3, label=f"p({answer!r}), the final answer")
        ax.plot(lens.layer, lens.prob, ls="--", lw=1, label="p(top token after that layer)")
        finish_logit_lens_axes(ax, "probability under the logit lens")
        return {"logit_lens": fig}

    def _first_top_layer(self) -> int | None:
        first = self.logit_lens[self.logit_lens.answer_rank == 0].layer
        return int(first.iloc[0]) if len(first) else None

    def findings(self) -> list[Finding]:
        top = self.top_next[0]
        out = [self.finding("top_next", f"{escape(repr(self.prompt))} → {escape(repr(top['token']))} with "
                            f"p = {top['prob']:.3f}.", float(top["prob"]), "probability")]
        layer = self._first_top_layer()
        if layer is not None:
            out.append(self.finding("first_top_layer", f"The answer {escape(repr(top['token']))} is first the top "
                                    f"token under the logit lens after layer {layer}.", layer, "layer"))
        return out

    def summary_markdown(self) -> str:
        top, layer, c = self.top_next[0], self._first_top_layer(), self.config
        depth = f"first top-1 under the logit lens after layer {layer}" if layer is not None else \
            "never top-1 before the last layer"
        return (f"{escape(repr(self.prompt))} → {escape(repr(top['token']))} with p = {top['prob']:.3f}; {depth} of "
                f"{c['n_layers']}.\n\n**{self.model}**: {c['n_layers']} layers, d_model {c['d_model']}, "
                f"{c['n_heads']} query heads ({c['n_kv_heads']} key/value), d_mlp {c['d_mlp']}, vocabulary "
                f"{c['d_vocab']}.")

    def render(self) -> str:
        """The terminal view `interp inspect` prints."""
        c = self.config
        lines = [
            f"{self.model}: {c['n_layers']} layers, d_model {c['d_model']}, {c['n_heads']} heads "
            f"({c['n_kv_heads']} key/value), d_head {c['d_head']}, d_mlp {c['d_mlp']}, vocab {c['d_vocab']}, "
            f"context {c['n_ctx']}, {c['norm']} norm, {c['positional']} positions, {c['act']} "
            f"{'gated ' if c['gated_mlp'] else ''}MLP",
            f"weights: {Processing(**c.get('weight_processing', {}))}",  # the checkpoint's, or TL-processed
            f"prompt: {len(self.tokens)} tokens {self.tokens}",
            "",
            "top next tokens:",
        ]
        lines += [f"  {t['prob']:.3f}  {t['token']!r}" for t in self.top_next]
        lines += ["", "logit lens (top token after each layer; last column: p of the final answer "
                  f"{self.top_next[0]['token']!r}):"]
        for row in self.logit_lens.itertuples():
            lines.append(f"  layer {row.layer:>2}  {row.top_token!r:<16} {row.prob:.3f}   {row.answer_prob:.3f}")
        return "\n".join(lines)
