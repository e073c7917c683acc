"""`run_overview`: each prompt's top next tokens and its logit lens."""

from __future__ import annotations

import time

import pandas as pd
import torch

from interp.analysis.inspect.run import inspect_prompt
from interp.analysis.overview.params import OverviewParams
from interp.analysis.overview.result import OverviewResult
from interp.fingerprint import config_dict
from interp.progress import Progress, track


@torch.no_grad()
def run_overview(model, params: OverviewParams = OverviewParams(), progress: Progress | None = None) -> OverviewResult:
    start = time.perf_counter()
    preds, lens = [], []
    for prompt in track(progress, list(params.prompts), "logit lens"):
        res = inspect_prompt(model, prompt, top_k=params.top_k)
        preds += [{"prompt": prompt, "rank": i + 1, "token": t["token"], "prob": t["prob"]}
                  for i, t in enumerate(res.top_next)]
        lens.append(res.logit_lens.assign(prompt=prompt))
    table = pd.concat(lens, ignore_index=True)[["prompt", "layer", "top_token", "prob", "answer_prob", "answer_rank"]]
    return OverviewResult(model.cfg.name, params, time.perf_counter() - start, config_dict(model),
                          pd.DataFrame(preds), table)
