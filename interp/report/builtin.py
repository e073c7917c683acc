"""Two small experiments the report owns, in the common analysis shape (run_x(model, params, progress)).

- ``run_overview``: the model's next-token prediction on a few fact prompts and the logit lens
  (nostalgebraist 2020): the residual stream after each layer read through the final norm and the
  unembedding, showing at which depth the answer appears. Built on :func:`interp.analysis.inspect.inspect_prompt`.
- ``run_attention_viewer``: ranks heads by induction score (Olsson et al. 2022: attention from a token in
  the second copy of a repeated random sequence to the token right after its first copy) and records the
  top heads' attention patterns on a readable repeated text, for the report's interactive viewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from interp.figures import save_figure
from interp.model import hook_names

# ----------------------------------------------------------------------------------------------- overview


@dataclass(frozen=True)
class OverviewParams:
    prompts: tuple[str, ...] = ("The Eiffel Tower is located in the city of",
                                "Michael Jordan plays the sport of")
    top_k: int = 5


@dataclass
class OverviewResult:
    model: str
    config: dict
    predictions: pd.DataFrame  # prompt, rank, token, prob
    logit_lens: pd.DataFrame  # prompt, layer, top_token, prob, answer_prob, answer_rank

    def to_json(self) -> dict:
        return {"model": self.model, "config": self.config,
                "predictions": self.predictions.to_dict(orient="records"),
                "logit_lens": self.logit_lens.to_dict(orient="records")}

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"predictions": self.predictions, "logit_lens": self.logit_lens}

    def save_figures(self, out_dir: Path) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 3.4), dpi=110)
        for prompt, rows in self.logit_lens.groupby("prompt", sort=False):
            answer = self.predictions[(self.predictions.prompt == prompt) & (self.predictions["rank"] == 1)].token.iloc[0]
            ax.plot(rows.layer, rows.answer_prob, marker="o", ms=3, label=f"{prompt} → {answer!r}")
        ax.set_xlabel("layer (residual stream after it)")
        ax.set_ylabel("p(final answer) under the logit lens")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        path = save_figure(fig, Path(out_dir) / "logit_lens.png")
        return [path]

    def summary_markdown(self) -> str:
        c = self.config
        lines = []
        for prompt, rows in self.logit_lens.groupby("prompt", sort=False):
            top = self.predictions[(self.predictions.prompt == prompt) & (self.predictions["rank"] == 1)].iloc[0]
            first = rows[rows.answer_rank == 0].layer
            depth = f"first top-1 under the logit lens after layer {int(first.iloc[0])}" if len(first) else "never top-1 before the last layer"
            lines.append(f"- \"{prompt}\" → {top.token!r} with p = {top.prob:.3f}; {depth} of {c['n_layers']}.")
        lines += ["", f"**{self.model}**: {c['n_layers']} layers, d_model {c['d_model']}, {c['n_heads']} query heads "
                  f"({c['n_kv_heads']} key/value), d_mlp {c['d_mlp']}, vocabulary {c['d_vocab']}."]
        return "\n".join(lines)


@torch.no_grad()
def run_overview(model, params: OverviewParams, progress=None) -> OverviewResult:
    from interp.analysis.inspect import inspect_prompt

    preds, lens = [], []
    prompts = list(params.prompts)
    for prompt in progress(prompts, desc="logit lens") if progress else prompts:
        res = inspect_prompt(model, prompt, top_k=params.top_k)
        preds += [{"prompt": prompt, "rank": i + 1, "token": t["token"], "prob": t["prob"]} for i, t in enumerate(res.top_next)]
        lens.append(res.logit_lens.assign(prompt=prompt))
    table = pd.concat(lens, ignore_index=True)[["prompt", "layer", "top_token", "prob", "answer_prob", "answer_rank"]]
    cfg = {k: v for k, v in model.cfg.to_dict().items() if k != "extra"}
    return OverviewResult(model.cfg.name, cfg, pd.DataFrame(preds), table)


# ------------------------------------------------------------------------------------------ attention viewer

VIEWER_TEXT = ("Mr and Mrs Dursley, of number four, Privet Drive, were proud to say that they were perfectly "
               "normal, thank you very much.")


@dataclass(frozen=True)
class ViewerParams:
    text: str = VIEWER_TEXT  # shown twice: the second copy is where induction heads look back
    n_heads: int = 6  # heads offered in the viewer
    seq_len: int = 40  # random-token sequence length for ranking heads
    batch: int = 8
    seed: int = 0


@dataclass
class ViewerResult:
    scores: pd.DataFrame  # layer, head, induction_score, prev_token_score (all heads, best first)
    tokens: list[str]
    heads: list[dict] = field(default_factory=list)  # [{"layer","head","score","pattern": [[w_qk, k<=q]]}]
    random_patterns: list[list[list[float]]] = field(default_factory=list)  # top heads on random r + r

    def attention_viewer(self) -> dict:
        return {"tokens": self.tokens, "heads": self.heads}

    def to_json(self) -> dict:
        return {"top_heads": self.scores.head(len(self.heads)).to_dict(orient="records"), "tokens": self.tokens}

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"head_scores": self.scores}

    def save_figures(self, out_dir: Path) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = min(4, len(self.random_patterns))
        if n == 0:
            return []
        fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 3.1), dpi=110, squeeze=False)
        for ax, head, pattern in zip(axes[0], self.heads, self.random_patterns):
            ax.imshow(pattern, cmap="Blues", vmin=0, vmax=1)
            ax.set_title(f"L{head['layer']}H{head['head']}  score {head['score']:.2f}", fontsize=9)
            ax.set_xlabel("key position", fontsize=8)
            ax.set_ylabel("query position", fontsize=8)
            ax.tick_params(labelsize=7)
        fig.suptitle("Top induction heads on a random sequence r repeated (r + r): the stripe is attention to the "
                     "token after the earlier copy", fontsize=8)
        path = save_figure(fig, Path(out_dir) / "top_heads_patterns.png")
        return [path]

    def summary_markdown(self) -> str:
        top = self.scores.head(len(self.heads))
        heads = ", ".join(f"L{r.layer}H{r.head} ({r.induction_score:.2f})" for r in top.itertuples())
        median = float(self.scores.induction_score.median())
        return (f"Top induction heads by induction score on repeated random tokens: {heads}; the median head "
                f"scores {median:.3f}. Hover the tokens of the viewer below to see where they attend.")


def _bos(model) -> list[int]:
    """[BOS] where the model is used with one (Gemma), else nothing (SmolLM2 is not)."""
    bos = model.cfg.bos_token_id
    return [bos] if bos is not None and model.cfg.default_prepend_bos else []


@torch.no_grad()
def head_scores(model, seq_len: int, batch: int, seed: int) -> tuple[pd.DataFrame, torch.Tensor]:
    """Induction and previous-token score of every head on [BOS] + r + r; also row 0's patterns."""
    cfg = model.cfg
    gen = torch.Generator().manual_seed(seed)
    rand = torch.randint(100, cfg.d_vocab - 100, (batch, seq_len), generator=gen)  # avoid special tokens
    bos = torch.tensor(_bos(model), dtype=torch.long).expand(batch, -1)
    tokens = torch.cat([bos, rand, rand], dim=1)  # (b, o + 2L), o = 0 or 1
    off = bos.shape[1]
    q = torch.arange(off + seq_len, off + 2 * seq_len)  # second-copy query positions
    ind = torch.zeros(cfg.n_layers, cfg.n_heads)
    prev = torch.zeros(cfg.n_layers, cfg.n_heads)
    example = torch.zeros(cfg.n_layers, cfg.n_heads, tokens.shape[1], tokens.shape[1])

    def hook_for(layer: int):
        def hook(pattern: torch.Tensor, hook) -> None:  # (b, h, q, k)
            ind[layer] = pattern[:, :, q, q - seq_len + 1].float().mean((0, 2))
            allq = torch.arange(off + 1, tokens.shape[1])
            prev[layer] = pattern[:, :, allq, allq - 1].float().mean((0, 2))
            example[layer] = pattern[0].float()

        return hook

    with model.hooks(fwd_hooks=[(hook_names.pattern(layer), hook_for(layer)) for layer in range(cfg.n_layers)]):
        model(tokens.to(next(model.parameters()).device), return_type=None)
    layers, heads = torch.meshgrid(torch.arange(cfg.n_layers), torch.arange(cfg.n_heads), indexing="ij")
    table = pd.DataFrame({"layer": layers.flatten().tolist(), "head": heads.flatten().tolist(),
                          "induction_score": ind.flatten().tolist(), "prev_token_score": prev.flatten().tolist()})
    table = table.sort_values("induction_score", ascending=False, kind="stable").reset_index(drop=True)
    return table, example


@torch.no_grad()
def run_attention_viewer(model, params: ViewerParams, progress=None) -> ViewerResult:
    scores, example = head_scores(model, params.seq_len, params.batch, params.seed)
    top = scores.head(params.n_heads)
    ids = _bos(model) + 2 * model.encode(" " + params.text.strip())  # the text twice
    tokens = torch.tensor([ids])
    store: dict[int, torch.Tensor] = {}
    wanted = sorted(set(top.layer.tolist()))

    def keep(layer: int):
        def hook(pattern: torch.Tensor, hook) -> None:  # (1, h, q, k)
            store[layer] = pattern[0].float().cpu()

        return hook

    with model.hooks(fwd_hooks=[(hook_names.pattern(layer), keep(layer)) for layer in wanted]):
        model(tokens.to(next(model.parameters()).device), return_type=None)
    heads, randoms = [], []
    for row in top.itertuples():
        pattern = store[row.layer][row.head]  # (q, k)
        rows = [[round(float(w), 3) for w in pattern[i, : i + 1]] for i in range(pattern.shape[0])]  # causal part
        heads.append({"layer": int(row.layer), "head": int(row.head), "score": round(float(row.induction_score), 4),
                      "pattern": rows})
        randoms.append(example[row.layer, row.head].tolist())
    str_tokens = [model.to_string([i]) for i in ids]
    return ViewerResult(scores, str_tokens, heads, randoms)
