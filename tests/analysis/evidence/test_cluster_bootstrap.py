"""The cluster bootstrap: whole groups resampled; wider than the naive interval on clustered data, the same
interval when every group is one item."""

from __future__ import annotations

import numpy as np
import pytest

from interp.analysis.rome.evaluate import bootstrap_ci, bootstrap_weights


def _clustered(n_groups=12, size=6, seed=0):
    """Each group shares a random offset, so items inside a group are strongly correlated."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 1.0, n_groups)
    values = np.concatenate([o + rng.normal(0, 0.1, size) for o in offsets])
    groups = np.repeat(np.arange(n_groups), size)
    return values, groups


def test_cluster_interval_is_wider_on_clustered_data():
    values, groups = _clustered()
    lo_n, hi_n = bootstrap_ci(values, seed=0)
    lo_c, hi_c = bootstrap_ci(values, seed=0, groups=groups)
    # With 12 independent groups of 6 near-copies, the effective n is about 12, not 72: about sqrt(6) wider.
    assert (hi_c - lo_c) > 1.8 * (hi_n - lo_n)
    assert lo_c < values.mean() < hi_c


def test_singleton_groups_give_the_naive_interval_exactly():
    values = np.random.default_rng(3).random(40)
    assert bootstrap_ci(values, seed=5) == bootstrap_ci(values, seed=5, groups=list(range(40)))
    # Labels need not be 0..k-1: any distinct labels in item order draw the same items.
    assert bootstrap_ci(values, seed=5) == bootstrap_ci(values, seed=5, groups=[f"g{i}" for i in range(40)])
    # The naive path still draws what rng.choice drew before the cluster option existed.
    old = np.random.default_rng(5).choice(values, size=(1000, 40)).mean(1)
    lo, hi = bootstrap_ci(values, seed=5)
    assert lo == pytest.approx(np.percentile(old, 2.5), abs=1e-12)
    assert hi == pytest.approx(np.percentile(old, 97.5), abs=1e-12)


def test_weights_keep_groups_whole():
    groups = ["a", "a", "b", "c", "c", "c"]
    w = bootstrap_weights(6, n=200, seed=0, groups=groups)
    assert w.shape == (200, 6)
    assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 3] == w[:, 4]) and np.all(w[:, 4] == w[:, 5])
    # Three groups drawn per resample: the group counts sum to 3.
    assert np.all(w[:, 0] + w[:, 2] + w[:, 3] == 3)
    assert not np.all(w[:, 0] == w[:, 2])


def test_nans_are_dropped_with_their_labels_and_lengths_must_match():
    values, groups = _clustered(n_groups=5, size=3)
    with_nan = np.append(values, np.nan)
    assert bootstrap_ci(with_nan, seed=1, groups=[*groups, 99]) == bootstrap_ci(values, seed=1, groups=groups)
    with pytest.raises(ValueError, match="group labels"):
        bootstrap_ci(values, groups=groups[:-1])
