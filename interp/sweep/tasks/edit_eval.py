"""`edit-eval` on workers: shards of facts.

Two steps, as in `run_edit_eval`: which facts the model knows (shards of 128 facts, cut at multiples of
the 32-fact batches `known_facts` runs, so every batch is the serial run's), then the edits (shards of
whole `--edits` groups; each group is scored, edited, scored again and undone by `evaluate_group`, and
the worker puts the weights back after the shard in any case). The selection between the two steps
(known facts, --sample, --limit) is `select_facts`' on the known flags.
"""

from __future__ import annotations

import time

import pandas as pd

from interp.sweep.tasks import chunks, shard_size

KNOWN_SHARD = 128  # a multiple of known_facts' batch of 32


def known_shard(model, records, state) -> list[bool]:
    from interp.analysis.rome.evaluate import known_facts

    return known_facts(model, records)


def edit_shard(model, payload, state) -> tuple[list, list, float]:
    """Evaluate whole groups: (rows, samples, edit seconds). Statistics once per worker, before any timing."""
    from interp.analysis.rome.covariance import StatsCache, second_moment
    from interp.analysis.rome.run import edit_layers, evaluate_group

    groups, params = payload
    stats = state.setdefault("rome_stats", StatsCache())
    rome = params.rome if params.method == "rome" else params.memit.rome
    for layer in edit_layers(model, params):
        second_moment(model, layer, rome.stats, cache=stats)
    rows, samples, seconds = [], [], 0.0
    for group in groups:
        group_rows, sample, s = evaluate_group(model, group, params, stats)
        rows += group_rows
        samples += [sample] if sample else []
        seconds += s
    return rows, samples, seconds


def sharded_edit_eval(sweep, params, records=None):
    from interp.analysis.rome.result import EditEvalResult
    from interp.analysis.rome.run import choose_facts, fact_records, label_groups

    start = time.perf_counter()
    records = fact_records(params, records)
    known = None
    if params.known_only and records:
        parts = chunks(records, KNOWN_SHARD)
        flags = sweep.map(f"{__name__}:known_shard", [(("known", [f.case_id for f in p], p), p) for p in parts],
                          "known facts")
        known = [k for part in flags for k in part]
    chosen, n_unknown = choose_facts(records, known, params, sweep.info["name"])
    groups = chunks(chosen, params.edits)
    parts = chunks(groups, shard_size(len(groups)))
    outputs = sweep.map(f"{__name__}:edit_shard", [(("edit", params, p), (p, params)) for p in parts],
                        f"{params.method} edits")
    rows = label_groups([r for out in outputs for r in out[0]], chosen)
    samples = [s for out in outputs for s in out[1]]
    edit_seconds = sum(out[2] for out in outputs)
    return EditEvalResult(sweep.info["name"], params, time.perf_counter() - start, pd.DataFrame(rows),
                          edit_seconds / len(chosen), samples, n_unknown)
