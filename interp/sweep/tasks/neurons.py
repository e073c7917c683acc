"""`neurons --facts` on workers: shards of facts. Each worker builds the serial run's per-fact jobs (the
unrelated facts picked per fact from the seed and the fact's index) and runs the search and the controls
for the facts of its shard."""

from __future__ import annotations

import time

import pandas as pd

from interp.sweep.cache import digest
from interp.sweep.tasks import chunks, shard_size


def neuron_shard(model, payload, state) -> tuple[list, list]:
    from interp.analysis.facts.neuron_controls import control_rows
    from interp.analysis.facts.neurons import find_neurons
    from interp.analysis.facts.run import _fact_jobs

    indices, params = payload
    key = ("neuron_jobs", digest(params))
    if key not in state:
        state.clear()  # one sweep's jobs at a time
        state[key] = _fact_jobs(model, params)
    jobs = state[key]
    found, rows = [], []
    for i in indices:
        job = jobs[i]
        fn = find_neurons(model, job["prompts"], job["answer"], params, job["case_id"], job["target"])
        groups = {"fact": [(job["prompts"][0], job["answer"])],
                  "paraphrases": [(p, job["answer"]) for p in job["prompts"][1:]],
                  "unrelated": job["unrelated"]}
        rows += control_rows(model, fn, groups, params)
        found.append(fn)
    return found, rows


def sharded_neurons(sweep, params):
    from interp.analysis.facts.result import NeuronResult

    start = time.perf_counter()
    n = len(params.facts) if params.facts else 1
    parts = chunks(list(range(n)), shard_size(n, per_shard_max=4))
    outputs = sweep.map(f"{__name__}:neuron_shard", [(("neurons", params, p), (p, params)) for p in parts], "neurons")
    found = [f for out in outputs for f in out[0]]
    rows = [r for out in outputs for r in out[1]]
    return NeuronResult(sweep.info["name"], params, time.perf_counter() - start, found, pd.DataFrame(rows),
                        sweep.info["n_layers"])
