"""Intervals for the recall curves: Wilson for accuracies, percentile bootstrap for means and correlations.

Bootstraps resample whole base examples (clusters), because the points of one curve are measured on the
same examples moved to different positions; resampling examples keeps that pairing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959964


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (nan, nan when n = 0)."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_mean(values: Sequence[float], n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean (nan, nan for fewer than two values)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1)  # (n_boot,)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (float(lo), float(hi))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r, nan when either side is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def bootstrap_correlation(
    a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """Correlation across positions of the per-position means of `a` and `b`, with a cluster bootstrap.

    a, b: (n_examples, n_positions), one row per base example. Returns (r, lo, hi).
    """
    r = pearson(np.nanmean(a, 0), np.nanmean(b, 0))
    if math.isnan(r) or a.shape[0] < 2:
        return (r, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    rs = []
    for _ in range(n_boot):
        rows = rng.integers(0, a.shape[0], a.shape[0])
        rs.append(pearson(np.nanmean(a[rows], 0), np.nanmean(b[rows], 0)))
    rs = np.array(rs)
    rs = rs[~np.isnan(rs)]
    if len(rs) < n_boot // 2:
        return (r, math.nan, math.nan)
    lo, hi = np.percentile(rs, [2.5, 97.5])
    return (r, float(lo), float(hi))
