"""`lost-in-middle` on workers: the sizes x positions sweep, cut along the serial run's batches.

A prompt's scores depend (in the last bits) on the padded batch it runs in and on the trunk forward its
cache comes from, so every worker plans the whole sweep exactly as `score_examples` does
(`evaluate.plan_scoring`, deterministic) and each shard runs some of those batches (`score_batches`), each
trunk over the length the whole plan needs. The reduction to curves, heads and correlations is
`run_lost_in_middle`'s (`reduce_scores`), on the merged scores.
"""

from __future__ import annotations

import time

from interp.sweep.cache import digest
from interp.sweep.tasks import chunks, shard_size


def _plan(model, params, state):
    from interp.analysis.recall.evaluate import plan_scoring
    from interp.analysis.recall.sweep import build_examples

    key = ("recall_plan", digest(params))
    if key not in state:
        state.clear()  # one sweep's plan at a time
        examples = [e for _, e in build_examples(params)]
        state[key] = plan_scoring(model, examples, batch_size=params.batch_size, generate=params.generate,
                                  max_new_tokens=params.max_new_tokens, reuse_prefix=params.reuse_prefix)
    return state[key]


def recall_shard(model, payload, state):
    """("plan", params) -> (model name, number of batches); ("score", batch indices, params) -> {index: score}."""
    from interp.analysis.recall.evaluate import score_batches

    params = payload[-1]
    plan = _plan(model, params, state)
    if payload[0] == "plan":
        return model.cfg.name, len(plan.batches)
    return score_batches(model, plan, payload[1], generate=params.generate, attention=True)


def sharded_lost_in_middle(sweep, params):
    from interp.analysis.recall.run import reduce_scores
    from interp.analysis.recall.sweep import build_examples

    start = time.perf_counter()
    ref = f"{__name__}:recall_shard"
    _, n_batches = sweep.map(ref, [(("plan", params), ("plan", params))], "plan")[0]
    parts = chunks(list(range(n_batches)), shard_size(n_batches))
    outputs = sweep.map(ref, [(("score", p, params), ("score", p, params)) for p in parts], "lost-in-middle")
    pairs = build_examples(params)
    scores: list = [None] * len(pairs)
    for out in outputs:
        for i, s in out.items():
            scores[i] = s
    return reduce_scores(sweep.info["name"], params, pairs, scores, time.perf_counter() - start)
