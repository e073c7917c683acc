"""Data for the report's attention-pattern viewer: the top induction heads' patterns on a readable text.

Heads are ranked by this package's induction score (`scores.pattern_scores` on ``[BOS] + r + r`` from
`sequences.repeated_random_tokens`; Olsson et al. 2022), then their attention patterns are recorded on a
sentence shown twice, where an induction head in the second copy looks at the token after the earlier one.
A small analysis in the common shape: `ViewerParams` -> `run_attention_viewer` -> `ViewerResult`
(`interp attention-viewer`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd
import torch

from interp.analysis.induction.params import ViewerParams
from interp.analysis.induction.scores import pattern_scores
from interp.analysis.induction.sequences import repeated_random_tokens
from interp.analysis.result import Finding, ResultBase
from interp.figures import new_figure
from interp.model import hook_names
from interp.model.tokenize import bos_prefix
from interp.progress import Progress

CLI_FLAGS = {"text": "--text", "n_heads": "--n-heads", "seq_len": "--seq-len", "batch": "--batch", "seed": "--seed"}


@dataclass(repr=False)
class ViewerResult(ResultBase):
    model: str
    params: ViewerParams
    seconds: float
    scores: pd.DataFrame  # layer, head, induction_score, prev_token_score (all heads, best first)
    tokens: list[str]
    heads: list[dict] = field(default_factory=list)  # [{"layer","head","score","pattern": [[w_qk, k<=q]]}]
    random_patterns: list[list[list[float]]] = field(default_factory=list)  # top heads on random r + r
    command: str = ""

    cli_name = "attention-viewer"
    cli_flags = CLI_FLAGS

    def attention_viewer(self) -> dict:
        return {"tokens": self.tokens, "heads": self.heads}

    def to_json(self) -> dict:
        return {"model": self.model, "seconds": self.seconds,
                "top_heads": self.scores.head(len(self.heads)).to_dict(orient="records"), "tokens": self.tokens}

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"head_scores": self.scores}

    def figures(self) -> dict:
        n = min(4, len(self.random_patterns))
        if n == 0:
            return {}
        fig, axes = new_figure((3.0 * n, 3.1), dpi=110, ncols=n, squeeze=False)
        for ax, head, pattern in zip(axes[0], self.heads, self.random_patterns):
            ax.imshow(pattern, cmap="Blues", vmin=0, vmax=1)
            ax.set_title(f"L{head['layer']}H{head['head']}  score {head['score']:.2f}", fontsize=9)
            ax.set_xlabel("key position", fontsize=8)
            ax.set_ylabel("query position", fontsize=8)
            ax.tick_params(labelsize=7)
        fig.suptitle("Top induction heads on a random sequence r repeated (r + r): the stripe is attention to the "
                     "token after the earlier copy", fontsize=8)
        return {"top_heads_patterns": fig}

    def findings(self) -> list[Finding]:
        top = self.scores.iloc[0]
        return [self.finding("top_head", f"The top induction head is L{int(top['layer'])}H{int(top['head'])} "
                             f"(score {top.induction_score:.2f}).", float(top.induction_score), "attention")]

    def summary_markdown(self) -> str:
        top = self.scores.head(len(self.heads))
        heads = ", ".join(f"L{r.layer}H{r.head} ({r.induction_score:.2f})" for r in top.itertuples())
        median = float(self.scores.induction_score.median())
        return (f"Top induction heads by induction score on repeated random tokens: {heads}; the median head "
                f"scores {median:.3f}. Hover the tokens of the viewer below to see where they attend.")


def head_scores(model, seq_len: int, batch: int, seed: int) -> tuple[pd.DataFrame, torch.Tensor]:
    """Induction and previous-token score of every head (best first), and row 0's patterns (layer, h, q, k)."""
    ps = pattern_scores(model, repeated_random_tokens(model, batch, seq_len, seed), seq_len)
    layers, heads = torch.meshgrid(torch.arange(model.cfg.n_layers), torch.arange(model.cfg.n_heads), indexing="ij")
    table = pd.DataFrame({"layer": layers.flatten().tolist(), "head": heads.flatten().tolist(),
                          "induction_score": ps.induction.flatten().tolist(),
                          "prev_token_score": ps.prev_token.flatten().tolist()})
    ranked = table.sort_values("induction_score", ascending=False, kind="stable").reset_index(drop=True)
    return ranked, ps.example_patterns


@torch.no_grad()
def run_attention_viewer(model, params: ViewerParams = ViewerParams(),
                         progress: Progress | None = None) -> ViewerResult:
    start = time.perf_counter()
    scores, example = head_scores(model, params.seq_len, params.batch, params.seed)
    top = scores.head(params.n_heads)
    ids = bos_prefix(model) + 2 * model.encode(" " + params.text.strip(), prepend_bos=False)  # the text twice
    store: dict[int, torch.Tensor] = {}

    def keep(layer: int):
        def hook(pattern: torch.Tensor, hook) -> None:  # (1, h, q, k)
            store[layer] = pattern[0].float().cpu()

        return hook

    with model.hooks(fwd_hooks=[(hook_names.pattern(layer), keep(layer)) for layer in sorted(set(top.layer.tolist()))]):
        model(torch.tensor([ids], device=model.device), return_type=None)
    heads, randoms = [], []
    for row in top.itertuples():
        pattern = store[row.layer][row.head]  # (q, k)
        rows = [[round(float(w), 3) for w in pattern[i, : i + 1]] for i in range(pattern.shape[0])]  # causal part
        heads.append({"layer": int(row.layer), "head": int(row.head), "score": round(float(row.induction_score), 4),
                      "pattern": rows})
        randoms.append(example[row.layer, row.head].tolist())
    tokens = [model.to_string([i]) for i in ids]
    return ViewerResult(model.cfg.name, params, time.perf_counter() - start, scores, tokens,
                        heads, randoms)
