"""Metrics: logits (rows, pos, vocab) -> one number per row, read at the last position.

Answers are token ids: one id for every row, or one per pair (rows are pairs repeated cell-major, so a
per-pair tensor of length n is tiled to the rows)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Metric = Callable[[torch.Tensor], torch.Tensor]


def _wide(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (half-precision logits are widened; float64 stays float64)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _per_row(ids: int | torch.Tensor, rows: int, device) -> torch.Tensor:
    ids = torch.as_tensor(ids, device=device).reshape(-1)
    if rows % ids.numel():
        raise ValueError(f"{ids.numel()} answers do not tile {rows} rows")
    return ids.repeat(rows // ids.numel())


def logit_diff(answer: int | torch.Tensor, wrong: int | torch.Tensor, pos: int = -1) -> Metric:
    """logit(answer) - logit(wrong) at `pos`: the usual patching metric (Wang et al., Nanda)."""

    def metric(logits: torch.Tensor) -> torch.Tensor:
        last = _wide(logits[:, pos])  # (rows, vocab)
        rows = torch.arange(last.shape[0], device=last.device)
        a, w = _per_row(answer, len(rows), last.device), _per_row(wrong, len(rows), last.device)
        return last[rows, a] - last[rows, w]

    return metric


def answer_prob(answer: int | torch.Tensor, pos: int = -1) -> Metric:
    def metric(logits: torch.Tensor) -> torch.Tensor:
        probs = _wide(logits[:, pos]).softmax(-1)
        rows = torch.arange(probs.shape[0], device=probs.device)
        return probs[rows, _per_row(answer, len(rows), probs.device)]

    return metric


def answer_logprob(answer: int | torch.Tensor, pos: int = -1) -> Metric:
    def metric(logits: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(_wide(logits[:, pos]), -1)
        rows = torch.arange(logp.shape[0], device=logp.device)
        return logp[rows, _per_row(answer, len(rows), logp.device)]

    return metric
