"""`trace --facts` on workers: one shard for the prompt traced at every token, shards of facts after it.

Each shard calls the serial run's own steps (`interp.analysis.facts.run`): sigma over the fact set's
subjects, the single prompt at every token, each fact at its key tokens with its own noise (or skipped when
the model does not know it, or marked as the single prompt itself); `trace_result` merges them in the fact
set's order, as `run_trace` does.
"""

from __future__ import annotations

import time

from interp.sweep.tasks import chunks, shard_size


def trace_shard(model, payload, state):
    """("single", params) -> (sigma, the single trace); ("facts", indices, params) -> those facts' outcomes."""
    from interp.analysis.facts.causal_trace import prepare_case
    from interp.analysis.facts.run import trace_fact, trace_sigma, trace_single, traced_facts

    kind, params = payload[0], payload[-1]
    sigma = trace_sigma(model, params)
    if kind == "single":
        return sigma, trace_single(model, params, sigma)[1]
    case = prepare_case(model, params.prompt, params.subject, params.target)
    facts = traced_facts(params)
    return [trace_fact(model, facts[i], case, params, sigma) for i in payload[1]]


def sharded_trace(sweep, params):
    from interp.analysis.facts.run import trace_result, traced_facts

    start = time.perf_counter()
    n = len(traced_facts(params))
    parts = chunks(list(range(n)), shard_size(n, per_shard_max=4))
    shards = [(("single", params), ("single", params))] + [(("facts", p, params), ("facts", p, params)) for p in parts]
    outputs = sweep.map(f"{__name__}:trace_shard", shards, "trace")
    sigma, single = outputs[0]
    outcomes = [o for out in outputs[1:] for o in out]
    return trace_result(sweep.info["name"], params, time.perf_counter() - start, sigma, single, outcomes)
