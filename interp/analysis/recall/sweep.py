"""The lost-in-the-middle sweep: recall against the gold item's position, for several context sizes.

Liu et al. (TACL 2024, arXiv:2307.03172) place the one relevant item at each position of a k-item
context and plot accuracy against that position: for most models the curve is U-shaped (primacy and
recency), and it sinks as k grows. `run_lost_in_middle` (run.py) builds the same base examples at every
requested position (`loaders`), scores them all (`evaluate.score_examples`: greedy accuracy, teacher-
forced log-probability and rank, attention rows), then reduces them to curves with intervals,
retrieval heads, and the correlation of retrieval-head attention with recall across positions.
With `mitigations` the same examples are also run with the question before the context (query-aware
contextualisation) and with the gold item repeated at the end, and the change in the curve is reported.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from interp.analysis.recall.loaders import load_kv_file, load_qa_file
from interp.analysis.recall.params import RecallParams, resolve_positions
from interp.analysis.recall.prompts import RecallExample
from interp.analysis.recall.stats import bootstrap_mean, wilson
from interp.analysis.recall.synthetic import make_kv_examples, make_qa_examples, make_word_kv_examples
from interp.errors import InvalidInputError

GENERATORS = {"kv": make_kv_examples, "kv-words": make_word_kv_examples, "qa": make_qa_examples}
CONDITIONS = {"baseline": {}, "query-aware": {"query_aware": True}, "repeat-gold": {"repeat_gold": True}}


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


def curves(df: pd.DataFrame, seed: int, n_boot: int) -> pd.DataFrame:
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


def mitigation_effect(curves: pd.DataFrame) -> pd.DataFrame:
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
