"""A small analysis in the common shape, for testing the report machinery without the real analyses.

It reads real numbers off whatever model it is given (mean logit of each layer's residual under the
unembedding), draws one figure, and offers attention-viewer data built from the model's own patterns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from interp.analysis.result import ResultBase
from interp.model import hook_names

CALLS = {"n": 0}  # how many times run_fake really ran (the cache tests count it)


@dataclass(frozen=True)
class FakeParams:
    n_tokens: int = 8
    seed: int = 0
    fail: bool = False
    mutate: bool = False  # leave the weights changed (the runner must notice)
    numbers: tuple = ()  # filled from an [inputs] file
    inner: Inner = field(default_factory=lambda: Inner())


@dataclass(frozen=True)
class Inner:
    scale: float = 1.0


def load_numbers(path) -> list[int]:
    import json

    return json.loads(Path(path).read_text())


@dataclass(repr=False)
class FakeResult(ResultBase):
    table: pd.DataFrame
    tokens: list[str]
    patterns: list[list[list[float]]]
    model: str = "tiny"
    params: FakeParams = field(default_factory=FakeParams)
    seconds: float = 0.0
    command: str = ""

    def to_json(self) -> dict:
        return {"n_layers": int(self.table.layer.max()) + 1, "mean": float(self.table.value.mean())}

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"per_layer": self.table}

    def figures(self) -> dict:
        from interp.figures import new_figure

        fig, ax = new_figure((3, 2), dpi=60)
        ax.plot(self.table.layer, self.table.value)
        return {"per_layer": fig}

    def findings(self) -> list:
        mean = float(self.table.value.mean())
        return [self.finding("mean_norm", f"The mean residual norm is **{mean:.3f}** over {len(self.table)} layers.",
                             mean, "norm"),
                self.finding("second", "A second claim with `code` and a [link](https://example.org).", None)]

    def summary_markdown(self) -> str:
        return (f"- The mean residual norm is **{self.table.value.mean():.3f}** over {len(self.table)} layers.\n"
                f"- A second claim with `code` and a [link](https://example.org).")

    def attention_viewer(self) -> dict:
        heads = [{"layer": 0, "head": h, "score": 0.5 - 0.1 * h, "pattern": self.patterns[h]} for h in range(2)]
        return {"tokens": self.tokens, "heads": heads}


@torch.no_grad()
def run_fake(model, params: FakeParams, progress=None, extra=None) -> FakeResult:
    CALLS["n"] += 1
    CALLS["last"] = (params, extra)
    if params.fail:
        raise RuntimeError("fake analysis failed on purpose")
    if params.mutate:
        model.blocks[0].mlp.w_out.add_(1.0)
    gen = torch.Generator().manual_seed(params.seed)
    tokens = torch.randint(0, model.cfg.d_vocab, (1, params.n_tokens), generator=gen)
    names = [hook_names.resid_post(layer) for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens, names_filter=names + [hook_names.pattern(0)])
    layers = range(model.cfg.n_layers)
    values = [float(cache[hook_names.resid_post(layer)].norm(dim=-1).mean())
              for layer in (progress(layers) if progress else layers)]
    pattern = cache[hook_names.pattern(0)][0]  # (h, q, k)
    patterns = [[[round(float(w), 3) for w in pattern[h, i, : i + 1]] for i in range(params.n_tokens)]
                for h in range(2)]
    str_tokens = [f"t{int(t)}" if i % 3 else f" w<{int(t)}>" for i, t in enumerate(tokens[0])]  # spaces and < in tokens
    return FakeResult(pd.DataFrame({"layer": list(layers), "value": values}), str_tokens, patterns, model.cfg.name,
                      params)
