"""`lost-in-middle` on workers: the sizes x positions sweep, cut along the serial run's batches.

A prompt's scores depend (in the last bits) on the padded batch it runs in, so the shards are the serial
run's own batches: a worker first plans them as `score_examples` does (every prompt of every size and
position, grouped per base example with --reuse-prefix, else filled by length across the sweep), then each
shard scores a few of those units with `score_examples`, which forms exactly the same batch again. The
reduction to curves, heads and correlations is `run_lost_in_middle`'s (`reduce_scores`), on the merged scores.
"""

from __future__ import annotations

import time

from interp.sweep.tasks import chunks, shard_size


def _examples(params) -> list:
    from interp.analysis.recall.sweep import build_examples

    return [e for _, e in build_examples(params)]


def plan_units(model, params) -> list[list[int]]:
    """Example indices per unit, in the order `score_examples` batches them: a trunk group with
    --reuse-prefix, else one batch."""
    from interp.analysis.recall.evaluate import DEFAULT_NEW_TOKENS, prepare
    from interp.analysis.recall.prefix import plan_batches

    examples = _examples(params)
    if not examples:
        return []
    if params.reuse_prefix:
        groups: dict[tuple, list[int]] = {}
        for i, e in enumerate(examples):
            groups.setdefault((e.example_id, e.n_items, e.query_aware, e.repeat_gold, e.task), []).append(i)
        return list(groups.values())
    new_tokens = params.max_new_tokens or max(DEFAULT_NEW_TOKENS[e.task] for e in examples)
    prompts = [prepare(model, e, new_tokens if params.generate else 0).prompt for e in examples]
    return [list(b.rows) for b in plan_batches(prompts, [list(range(len(examples)))], params.batch_size, False)]


def recall_shard(model, payload, state):
    from interp.analysis.recall.evaluate import score_examples

    if payload[0] == "plan":
        return model.cfg.name, plan_units(model, payload[1])
    units, params = payload[1], payload[2]
    examples = _examples(params)
    out = []
    for unit in units:
        out.append(score_examples(model, [examples[i] for i in unit], batch_size=params.batch_size,
                                  generate=params.generate, max_new_tokens=params.max_new_tokens, attention=True,
                                  reuse_prefix=params.reuse_prefix))
    return out


def sharded_lost_in_middle(sweep, params):
    from interp.analysis.recall.run import reduce_scores
    from interp.analysis.recall.sweep import build_examples

    start = time.perf_counter()
    ref = f"{__name__}:recall_shard"
    _, units = sweep.map(ref, [(("plan", params), ("plan", params))], "plan")[0]
    parts = chunks(units, shard_size(len(units)))
    outputs = sweep.map(ref, [(("score", params, p), ("score", p, params)) for p in parts], "lost-in-middle")
    pairs = build_examples(params)
    scores: list = [None] * len(pairs)
    for part, out in zip(parts, outputs):
        for unit, unit_scores in zip(part, out):
            for i, s in zip(unit, unit_scores):
                scores[i] = s
    return reduce_scores(sweep.info["name"], params, pairs, scores, time.perf_counter() - start)
