"""`run_inspect`: one forward pass with the residual stream cached, read through the logit lens."""

from __future__ import annotations

import time

import pandas as pd
import torch

from interp.analysis.inspect.params import InspectParams
from interp.analysis.inspect.result import InspectResult
from interp.model import hook_names
from interp.model.processing import processing_of
from interp.progress import Progress


@torch.no_grad()
def run_inspect(model, params: InspectParams, progress: Progress | None = None) -> InspectResult:
    start = time.perf_counter()
    tokens = model.to_batch(params.prompt)[0]  # the model's BOS rule, no TransformerLens warning
    n = model.cfg.n_layers
    names = [hook_names.resid_post(layer) for layer in range(n)]
    logits, cache = model.run_with_cache(tokens, names_filter=names)
    probs = logits[0, -1].float().softmax(-1)
    top = probs.topk(params.top_k)
    top_next = [{"token": model.to_string([i]), "id": i, "prob": p}
                for p, i in zip(top.values.tolist(), top.indices.tolist())]
    answer = top.indices[0]
    resid = torch.stack([cache[name][0, -1] for name in names])  # (layer, d_model)
    lens = model.logits_from_resid(resid).float().softmax(-1)  # (layer, vocab)
    best = lens.max(-1)
    rank = (lens > lens[:, answer : answer + 1]).sum(-1)
    table = pd.DataFrame({
        "layer": range(n),
        "top_token": [model.to_string([i]) for i in best.indices.tolist()],
        "prob": best.values.tolist(),
        "answer_prob": lens[:, answer].tolist(),
        "answer_rank": rank.tolist(),
    })
    cfg = {k: v for k, v in model.cfg.to_dict().items() if k != "extra"}
    cfg["weight_processing"] = processing_of(model).to_dict()  # which weights: load_model(process_weights=...)
    return InspectResult(model.cfg.name, params, time.perf_counter() - start, cfg, model.to_str_tokens(tokens[0]),
                         top_next, table)


def inspect_prompt(model, prompt: str, top_k: int = 5) -> InspectResult:
    """`run_inspect` on one prompt."""
    return run_inspect(model, InspectParams(prompt, top_k))
