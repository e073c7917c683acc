"""`run_patch`: tokenise the pair, check it lines up, patch every cell of the grid (and compare methods)."""

from __future__ import annotations

import time

from interp.analysis.patching.params import PatchParams
from interp.analysis.patching.result import PatchReport
from interp.errors import InvalidInputError
from interp.patching import activation_patch, attribution_patch, logit_diff
from interp.patching.compare import spearman
from interp.progress import Progress, track


def _first_token(model, text: str, flag: str) -> int:
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise InvalidInputError(f"{flag} {text!r} tokenizes to nothing.")
    return ids[0]


def run_patch(model, params: PatchParams = PatchParams(), progress: Progress | None = None) -> PatchReport:
    start = time.perf_counter()
    clean, corrupted = model.to_batch(params.clean)[0], model.to_batch(params.corrupted)[0]
    if clean.shape != corrupted.shape:
        raise InvalidInputError(
            f"The clean prompt is {clean.shape[1]} tokens and the corrupted one {corrupted.shape[1]}; patching "
            "compares position by position, so give prompts of the same token length.")
    answer, wrong = _first_token(model, params.answer, "--answer"), _first_token(model, params.wrong, "--wrong")
    metric = logit_diff(answer, wrong)
    methods = ("activation", "attribution") if params.method == "both" else (params.method,)
    results = {}
    for method in track(progress, list(methods), "patching"):
        run = activation_patch if method == "activation" else attribution_patch
        results[method] = run(model, clean, corrupted, metric, kind=params.kind, direction=params.direction)
    rho = None
    if len(results) == 2:
        rho = spearman(results["activation"].mean().flatten(), results["attribution"].mean().flatten())
    tokens = [model.to_string([t]) for t in clean[0].tolist()]
    return PatchReport(model.cfg.name, params, time.perf_counter() - start, results, tokens, rho)
