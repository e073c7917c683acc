"""`neurons --facts` on workers, in the serial run's three steps (`interp.analysis.facts.run`): shards of
facts attribute (the costly part; each worker builds the serial run's per-fact jobs, with the same
unrelated picks), the driver refines per relation (p is shared by a relation's facts, so it needs them all),
then shards of facts run the suppress / amplify controls."""

from __future__ import annotations

import time

from interp.sweep.cache import digest
from interp.sweep.tasks import chunks, shard_size


def _jobs(model, params, state) -> list[dict]:
    from interp.analysis.facts.run import _fact_jobs

    key = ("neuron_jobs", digest(params))
    if key not in state:
        state.clear()  # one sweep's jobs at a time
        state[key] = _fact_jobs(model, params)
    return state[key]


def neuron_shard(model, payload, state):
    """("attribute", indices, params) -> [(job, attribution)]; ("controls", indices, params, found) -> rows."""
    from interp.analysis.facts.neurons import attribute
    from interp.analysis.facts.run import fact_controls

    kind, indices, params = payload[:3]
    jobs = _jobs(model, params, state)
    if kind == "attribute":
        return [(jobs[i], attribute(model, jobs[i]["prompts"], jobs[i]["answer"], params)) for i in indices]
    return [row for i, fn in zip(indices, payload[3]) for row in fact_controls(model, jobs[i], fn, params)]


def sharded_neurons(sweep, params):
    from interp.analysis.facts.run import neuron_result, refine_facts

    start = time.perf_counter()
    ref = f"{__name__}:neuron_shard"
    n = len(params.facts) if params.facts else 1
    parts = chunks(list(range(n)), shard_size(n, per_shard_max=4))
    done = [pair for out in sweep.map(ref, [(("attribute", p, params),) * 2 for p in parts], "neurons")
            for pair in out]
    jobs, attrs = [j for j, _ in done], [a for _, a in done]
    found = refine_facts(jobs, attrs, params)
    shards = []
    for p in parts:
        mine = [found[i] for i in p]
        shards.append((("controls", p, params, [fn.neurons for fn in mine]), ("controls", p, params, mine)))
    rows = [row for out in sweep.map(ref, shards, "neuron controls") for row in out]
    return neuron_result(sweep.info["name"], sweep.info["n_layers"], params, time.perf_counter() - start, found,
                         rows)
