"""The lost-in-the-middle sweep: recall against the gold item's position, for several context sizes.

Liu et al. (TACL 2024, arXiv:2307.03172) place the one relevant item at each position of a k-item
context and plot accuracy against that position: for most models the curve is U-shaped (primacy and
recency), and it sinks as k grows. `run_lost_in_middle` builds the same base examples at every
requested position (`loaders`), scores them all (`evaluate.score_examples`: greedy accuracy, teacher-
forced log-probability and rank, attention rows), then reduces them to curves with intervals,
retrieval heads, and the correlation of retrieval-head attention with recall across positions.
With `mitigations` the same examples are also run with the question before the context (query-aware
contextualisation) and with the gold item repeated at the end, and the change in the curve is reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.analysis.recall import attention as att
from interp.analysis.recall.evaluate import score_examples
from interp.analysis.recall.loaders import load_kv_file, load_qa_file
from interp.analysis.recall.synthetic import make_kv_examples, make_qa_examples, make_word_kv_examples
from interp.analysis.recall.prompts import TASKS, RecallExample
from interp.analysis.recall.result import RecallResult
from interp.analysis.recall.stats import bootstrap_mean, wilson
from interp.errors import InvalidInputError
from interp.model.transformer import Transformer

GENERATORS = {"kv": make_kv_examples, "kv-words": make_word_kv_examples, "qa": make_qa_examples}
CONDITIONS = {"baseline": {}, "query-aware": {"query_aware": True}, "repeat-gold": {"repeat_gold": True}}


@dataclass(frozen=True)
class RecallParams:
    """What to sweep. `positions`: "all", "N" (N evenly spaced, ends included) or "a,b,c" (indices,
    negative from the end). `file`: one of the paper's jsonl(.gz) files instead of generated examples
    (its k is used; `n_items` is ignored)."""

    task: str = "kv-words"
    n_items: tuple[int, ...] = (10, 20, 30)
    positions: str = "5"
    n_examples: int = 20
    file: str | None = None
    query_aware: bool = False
    repeat_gold: bool = False
    mitigations: bool = False
    generate: bool = True
    max_new_tokens: int | None = None
    batch_size: int = 8
    seed: int = 0
    reuse_prefix: bool = False  # shared-prefix KV reuse (evaluate.score_examples): for dense sweeps
    top_heads: int = 10
    n_boot: int = 1000

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InvalidInputError(f"Unknown task {self.task!r}; choose one of {', '.join(TASKS)}.")
        if self.n_examples < 1:
            raise InvalidInputError(f"Need at least one example, got {self.n_examples}.")
        if not self.n_items or min(self.n_items) < 1:
            raise InvalidInputError("Every context size must be at least one item.")
        if self.batch_size < 1:
            raise InvalidInputError(f"The batch size must be at least 1, got {self.batch_size}.")


def resolve_positions(spec: str, k: int) -> list[int]:
    """Gold positions (0-based) for a k-item context from "all", "N" or "a,b,c"."""
    spec = spec.strip().lower()
    if spec == "all":
        return list(range(k))
    try:
        values = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise InvalidInputError(f"Positions {spec!r} must be 'all', a count like '5', or indices like '0,4,9'.")
    if not values:
        raise InvalidInputError("No gold positions given; use 'all', a count like '5', or indices like '0,4,9'.")
    if "," not in spec:
        if values[0] < 1:
            raise InvalidInputError(f"The number of positions must be at least 1, got {values[0]}.")
        return sorted({int(round(x)) for x in np.linspace(0, k - 1, min(values[0], k))})
    for v in values:
        if not -k <= v < k:
            raise InvalidInputError(f"Gold position {v} is out of range for {k} items (0 to {k - 1}).")
    return sorted({v % k for v in values})


def build_examples(params: RecallParams) -> list[tuple[str, RecallExample]]:
    """(condition, example) pairs for every context size, position and condition asked for."""
    base = {"query_aware": params.query_aware, "repeat_gold": params.repeat_gold}
    conditions = CONDITIONS if params.mitigations else {"baseline": {}}
    if params.file is not None:
        load = load_qa_file if params.task == "qa" else load_kv_file
        records = load(params.file, limit=params.n_examples, **base)
        if not records:
            raise InvalidInputError(f"{params.file} holds no examples.")
        swept = [r.with_gold_at(p) for r in records for p in resolve_positions(params.positions, r.n_items)]
    else:
        swept = []
        for k in params.n_items:
            swept += GENERATORS[params.task](params.n_examples, k, params.seed,
                                             resolve_positions(params.positions, k), **base)
    out = []
    for name, change in conditions.items():
        out += [(name, dataclasses.replace(e, **change)) for e in swept]
    return out


def _curves(df: pd.DataFrame, seed: int, n_boot: int) -> pd.DataFrame:
    rows = []
    for (cond, k, pos), g in df.groupby(["condition", "n_items", "gold_position"], sort=True):
        row = {"condition": cond, "n_items": k, "gold_position": pos, "n": len(g)}
        for metric in ("correct", "choice_correct"):
            x = g[metric].dropna()
            name = "accuracy" if metric == "correct" else "choice_accuracy"
            row[name] = x.mean() if len(x) else np.nan
            row[f"{name}_lo"], row[f"{name}_hi"] = wilson(x.sum(), len(x))
        row["logprob"] = g["logprob"].mean()
        row["logprob_lo"], row["logprob_hi"] = bootstrap_mean(g["logprob"], n_boot, seed)
        row["median_rank"] = g["rank"].median()
        row["top1"] = (g["rank"] == 1).mean()
        rows.append(row)
    return pd.DataFrame(rows)


def _mitigation_effect(curves: pd.DataFrame) -> pd.DataFrame:
    """Per mitigation and size: mean change over positions, and the change at the baseline's worst point."""
    base = curves[curves["condition"] == "baseline"].set_index(["n_items", "gold_position"])
    rows = []
    for cond, g in curves[curves["condition"] != "baseline"].groupby("condition"):
        g = g.set_index(["n_items", "gold_position"])
        for k in sorted(g.index.get_level_values(0).unique()):
            b, m = base.loc[k], g.loc[k]
            worst = b["logprob"].idxmin()
            rows.append({"condition": cond, "n_items": k,
                         "delta_accuracy": (m["accuracy"] - b["accuracy"]).mean(),
                         "delta_choice_accuracy": (m["choice_accuracy"] - b["choice_accuracy"]).mean(),
                         "delta_logprob": (m["logprob"] - b["logprob"]).mean(),
                         "worst_position": worst, "delta_logprob_at_worst": m["logprob"][worst] - b["logprob"][worst]})
    return pd.DataFrame(rows)


def run_lost_in_middle(model: Transformer, params: RecallParams = RecallParams(),
                       progress: Callable | None = None) -> RecallResult:
    """Sweep gold positions and context sizes; return curves, retrieval heads and their correlation."""
    pairs = build_examples(params)
    examples = [e for _, e in pairs]
    scores = score_examples(model, examples, batch_size=params.batch_size, generate=params.generate,
                            max_new_tokens=params.max_new_tokens, attention=True,
                            reuse_prefix=params.reuse_prefix, progress=progress)
    df = pd.DataFrame([{
        "condition": cond, "n_items": e.n_items, "gold_position": e.gold_position, "example_id": e.example_id,
        "logprob": s.logprob, "first_logprob": s.first_logprob, "rank": s.rank,
        "choice_correct": s.choice_correct, "correct": s.correct, "prediction": s.prediction,
        "answer": e.answers[0],
    } for (cond, e), s in zip(pairs, scores)])
    gold = np.stack([s.gold_attention for s in scores])  # (n, layers, heads)
    distractor = np.stack([s.distractor_attention for s in scores])  # (n, layers, heads)
    is_base = (df["condition"] == "baseline").to_numpy()
    heads = att.retrieval_heads(gold[is_base], distractor[is_base], params.top_heads)
    df["head_gold_mass"] = att.head_mass(gold, heads)
    df["head_distractor_mass"] = att.head_mass(distractor, heads)
    metrics = [m for m in ("correct", "choice_correct", "logprob") if df[m].notna().any()]
    largest = df.loc[is_base, "n_items"].max()
    pick = is_base & (df["n_items"] == largest).to_numpy()
    curves = _curves(df, params.seed, params.n_boot)
    return RecallResult(
        model_name=model.cfg.name, params=params, examples=df, curves=curves, heads=heads,
        attention_by_position=att.mass_by_position(df, params.seed, params.n_boot),
        correlations=att.correlations(df, metrics, params.seed, params.n_boot),
        mitigations=_mitigation_effect(curves) if params.mitigations else pd.DataFrame(),
        heatmap=att.heatmap_data(gold[pick], distractor[pick], df[pick]) | {"n_items": int(largest)},
    )
