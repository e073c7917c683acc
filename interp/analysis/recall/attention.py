"""The attention behind recall: which heads look at the gold item, and does that track accuracy by position.

For every example the attention row of the query that predicts the answer's first token is kept in
every layer and head (`evaluate.answer_query_row`: for the KV tasks the teacher-forced opening quote
after `value:`, for QA the prompt's last token). Its mass on the gold item's tokens, against its mean mass on one
distractor item, says how strongly a head singles out the relevant item. Heads whose gold-minus-
distractor mass is largest, averaged over all examples, are the retrieval heads (the heads Wu et al.
2024, "Retrieval Head Mechanistically Explains Long-Context Factuality", arXiv:2404.15574, find
copying from the needle). If recall is lost in the middle because the model stops attending there
(Liu et al. 2024, section 6 discusses attention's primacy/recency bias), those heads' mass on the
gold item should rise and fall with accuracy across gold positions: we report that correlation with
a bootstrap interval over base examples. Distractor items are the control for every mass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from interp.analysis.recall.stats import bootstrap_correlation, bootstrap_mean


def retrieval_heads(gold: np.ndarray, distractor: np.ndarray, top_k: int = 10) -> pd.DataFrame:
    """Heads ranked by mean (gold mass - mean distractor-item mass); gold, distractor: (n, layers, heads)."""
    n_layers, n_heads = gold.shape[1:]
    g, d = gold.mean(0), distractor.mean(0)  # (layers, heads)
    layer, head = np.meshgrid(np.arange(n_layers), np.arange(n_heads), indexing="ij")
    df = pd.DataFrame({
        "layer": layer.ravel(), "head": head.ravel(), "gold_mass": g.ravel(), "distractor_mass": d.ravel(),
        "score": (g - d).ravel(), "ratio": (g / np.maximum(d, 1e-9)).ravel(),
    })
    return df.sort_values("score", ascending=False).head(top_k).reset_index(drop=True)


def head_mass(gold: np.ndarray, heads: pd.DataFrame) -> np.ndarray:
    """Per example, the summed gold mass of the given (layer, head) pairs: (n,)."""
    return gold[:, heads["layer"].to_numpy(), heads["head"].to_numpy()].sum(-1)


def mass_by_position(examples: pd.DataFrame, seed: int = 0, n_boot: int = 1000) -> pd.DataFrame:
    """Mean retrieval-head mass on the gold (and, as control, on a distractor) per curve point."""
    rows = []
    for (cond, k, pos), g in examples.groupby(["condition", "n_items", "gold_position"], sort=True):
        lo, hi = bootstrap_mean(g["head_gold_mass"], n_boot, seed)
        rows.append({"condition": cond, "n_items": k, "gold_position": pos, "n": len(g),
                     "head_gold_mass": g["head_gold_mass"].mean(), "head_gold_mass_lo": lo,
                     "head_gold_mass_hi": hi, "head_distractor_mass": g["head_distractor_mass"].mean()})
    return pd.DataFrame(rows)


def correlations(examples: pd.DataFrame, metrics: list[str], seed: int = 0, n_boot: int = 1000) -> pd.DataFrame:
    """Across gold positions: Pearson r of mean retrieval-head gold mass with each metric, per curve.

    The bootstrap resamples base examples, keeping each one's row of positions together.
    """
    rows = []
    for (cond, k), g in examples.groupby(["condition", "n_items"], sort=True):
        mass = g.pivot_table(index="example_id", columns="gold_position", values="head_gold_mass")
        for metric in metrics:
            if g[metric].isna().all():
                continue
            y = g.pivot_table(index="example_id", columns="gold_position", values=metric, dropna=False)
            y = y.reindex(index=mass.index, columns=mass.columns)
            r, lo, hi = bootstrap_correlation(mass.to_numpy(), y.to_numpy(), n_boot, seed)
            rows.append({"condition": cond, "n_items": k, "metric": metric, "n_positions": mass.shape[1],
                         "n_examples": mass.shape[0], "r": r, "r_lo": lo, "r_hi": hi})
    return pd.DataFrame(rows)


def heatmap_data(gold: np.ndarray, distractor: np.ndarray, examples: pd.DataFrame) -> dict[str, np.ndarray]:
    """What the heatmap figure shows, for the rows passed in (one curve).

    "head_score": (layers, heads) mean gold - distractor mass; "position_layer": (positions, layers)
    gold mass summed over heads, averaged per gold position; "positions": the gold positions.
    """
    positions = np.array(sorted(examples["gold_position"].unique()))
    pos = examples["gold_position"].to_numpy()
    by_pos = np.stack([gold[pos == p].sum(-1).mean(0) for p in positions])  # (positions, layers)
    return {"head_score": (gold - distractor).mean(0), "position_layer": by_pos, "positions": positions}
