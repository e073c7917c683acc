"""`run_lost_in_middle`: sweep gold positions and context sizes, score every prompt, reduce to curves and heads."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from interp.analysis.recall import attention as att
from interp.analysis.recall.evaluate import Score, score_examples
from interp.analysis.recall.params import RecallParams
from interp.analysis.recall.result import RecallResult
from interp.analysis.recall.sweep import build_examples, curves, mitigation_effect
from interp.model.transformer import Transformer
from interp.progress import Progress


def run_lost_in_middle(model: Transformer, params: RecallParams = RecallParams(),
                       progress: Progress | None = None) -> RecallResult:
    """Sweep gold positions and context sizes; return curves, retrieval heads and their correlation."""
    start = time.perf_counter()
    pairs = build_examples(params)
    scores = score_examples(model, [e for _, e in pairs], batch_size=params.batch_size, generate=params.generate,
                            max_new_tokens=params.max_new_tokens, attention=True,
                            reuse_prefix=params.reuse_prefix, progress=progress)
    return reduce_scores(model.cfg.name, params, pairs, scores, time.perf_counter() - start)


def reduce_scores(model_name: str, params: RecallParams, pairs: list, scores: list[Score],
                  seconds: float) -> RecallResult:
    """The scores of every (condition, example) reduced to curves, retrieval heads and their correlations."""
    df = example_table(pairs, scores)
    gold = np.stack([s.gold_attention for s in scores])  # (n, layers, heads)
    distractor = np.stack([s.distractor_attention for s in scores])  # (n, layers, heads)
    is_base = (df["condition"] == "baseline").to_numpy()
    heads = att.retrieval_heads(gold[is_base], distractor[is_base], params.top_heads)
    df["head_gold_mass"] = att.head_mass(gold, heads)
    df["head_distractor_mass"] = att.head_mass(distractor, heads)
    metrics = [m for m in ("correct", "choice_correct", "logprob") if df[m].notna().any()]
    largest = df.loc[is_base, "n_items"].max()
    pick = is_base & (df["n_items"] == largest).to_numpy()
    curve = curves(df, params.seed, params.n_boot)
    return RecallResult(
        model=model_name, params=params, seconds=seconds, examples=df, curves=curve,
        heads=heads, attention_by_position=att.mass_by_position(df, params.seed, params.n_boot),
        correlations=att.correlations(df, metrics, params.seed, params.n_boot),
        mitigations=mitigation_effect(curve) if params.mitigations else pd.DataFrame(),
        heatmap=att.heatmap_data(gold[pick], distractor[pick], df[pick]) | {"n_items": int(largest)},
    )


def example_table(pairs: list, scores: list[Score]) -> pd.DataFrame:
    """One row per scored prompt: its condition, size, gold position and every score."""
    return pd.DataFrame([{
        "condition": cond, "n_items": e.n_items, "gold_position": e.gold_position, "example_id": e.example_id,
        "logprob": s.logprob, "first_logprob": s.first_logprob, "rank": s.rank,
        "choice_correct": s.choice_correct, "correct": s.correct, "prediction": s.prediction,
        "answer": e.answers[0],
    } for (cond, e), s in zip(pairs, scores)])
