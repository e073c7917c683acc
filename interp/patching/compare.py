"""How well attribution patching ranks cells as activation patching does: Spearman's rank correlation per
grid, with a permutation control (the correlation of shuffled cells)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interp.patching.activation import activation_patch
from interp.patching.attribution import attribution_patch
from interp.patching.metrics import Metric


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Rank correlation of two equally long vectors (average ranks for ties)."""
    def ranks(x: torch.Tensor) -> torch.Tensor:
        x = x.double().flatten()
        order = torch.argsort(x)
        r = torch.empty_like(x)
        r[order] = torch.arange(len(x), dtype=torch.double)
        for value in torch.unique(x):  # ties share their mean rank
            tied = x == value
            if tied.sum() > 1:
                r[tied] = r[tied].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra @ rb) / (ra.norm() * rb.norm()).clamp_min(1e-12))


def compare_methods(model, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric,
                    kinds: Sequence[str] = ("resid", "attn", "mlp", "heads"), shuffles: int = 200,
                    seed: int = 0) -> list[dict]:
    """One row per grid: cells, Spearman rho of the mean patched metric, and the 95th percentile of rho
    over `shuffles` random pairings of the cells (what chance agreement looks like on this grid)."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for kind in kinds:
        act = activation_patch(model, clean, corrupted, metric, kind=kind).mean().flatten()
        att = attribution_patch(model, clean, corrupted, metric, kind=kind).mean().flatten()
        null = sorted(spearman(act, att[torch.randperm(len(att), generator=gen)]) for _ in range(shuffles))
        rows.append(dict(kind=kind, cells=len(act), spearman=spearman(act, att),
                         chance_95=null[int(0.95 * (shuffles - 1))]))
    return rows
