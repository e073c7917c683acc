"""`trace --facts` on workers: one shard for the prompt traced at every token, shards of facts after it.

Each fact shard traces its facts at their key tokens with the fact's own noise (drawn from the seed,
as in `run_trace`). A fact that is the single prompt itself is the single trace in the serial run, so its
shard marks it (None) and the merge puts the single trace there.
"""

from __future__ import annotations

import dataclasses
import time

from interp.sweep.tasks import chunks, shard_size


def _sigma(model, params) -> float:
    from interp.analysis.facts.causal_trace import embedding_std

    return params.sigma if params.sigma is not None else embedding_std(model)


def trace_shard(model, payload, state):
    """("single", params) -> (sigma, the single trace); ("facts", facts, params) -> a list of fact traces."""
    if payload[0] == "single":
        return single_shard(model, payload[1])
    return facts_shard(model, payload[1], payload[2])


def single_shard(model, params):
    from interp.analysis.facts.causal_trace import case_noise, prepare_case, trace_case

    sigma = _sigma(model, params)
    case = prepare_case(model, params.prompt, params.subject, params.target)
    return sigma, trace_case(model, case, case_noise(model, case, params, sigma), params)


def facts_shard(model, facts, params) -> list:
    from interp.analysis.facts.causal_trace import case_noise, prepare_case, trace_case

    sigma = _sigma(model, params)
    case = prepare_case(model, params.prompt, params.subject, params.target)
    out = []
    for fact in facts:
        fc = prepare_case(model, fact.prompt, fact.subject, fact.target_true, case_id=fact.case_id)
        if fc.prompt == case.prompt and fc.subject == case.subject and fc.answer_id == case.answer_id:
            out.append(None)  # the single trace, as in run_trace
            continue
        keys = sorted({q for qs in fc.category_positions().values() for q in qs})
        out.append(trace_case(model, fc, case_noise(model, fc, params, sigma), params, positions=keys))
    return out


def sharded_trace(sweep, params):
    from interp.analysis.facts.result import TraceResult

    start = time.perf_counter()
    bare = dataclasses.replace(params, facts=())  # what the single shard depends on
    facts = list(params.facts)
    parts = chunks(facts, shard_size(len(facts), per_shard_max=4))
    shards = [(("single", bare), ("single", bare))] + [(("facts", bare, p), ("facts", p, bare)) for p in parts]
    outputs = sweep.map(f"{__name__}:trace_shard", shards, "trace")
    sigma, single = outputs[0]
    traces = [single if t is None else t for out in outputs[1:] for t in out]
    return TraceResult(sweep.info["name"], params, time.perf_counter() - start, sigma, single, traces)
