"""`run_trace` and `run_neurons`: the two fact analyses' entry points."""

from __future__ import annotations

import random
import time

import pandas as pd

from interp.analysis.facts.causal_trace import case_noise, embedding_std, prepare_case, trace_case
from interp.analysis.facts.neuron_controls import answer_token, control_rows
from interp.analysis.facts.neurons import find_neurons
from interp.analysis.facts.params import NeuronParams, TraceParams
from interp.analysis.facts.result import NeuronResult, TraceResult
from interp.progress import Progress, track


def run_trace(model, params: TraceParams = TraceParams(), progress: Progress | None = None) -> TraceResult:
    """Trace params.prompt at every token, and each of params.facts at its key tokens."""
    start = time.perf_counter()
    sigma = params.sigma if params.sigma is not None else embedding_std(model)
    case = prepare_case(model, params.prompt, params.subject, params.target)
    single = trace_case(model, case, case_noise(model, case, params, sigma), params, progress=progress)
    traces = []
    facts = params.facts
    for fact in track(progress, facts, "facts"):
        fc = prepare_case(model, fact.prompt, fact.subject, fact.target_true, case_id=fact.case_id)
        if fc.prompt == case.prompt and fc.subject == case.subject and fc.answer_id == case.answer_id:
            traces.append(single)  # already traced at every token
            continue
        keys = sorted({q for qs in fc.category_positions().values() for q in qs})
        traces.append(trace_case(model, fc, case_noise(model, fc, params, sigma), params, positions=keys))
    return TraceResult(model.cfg.name, params, time.perf_counter() - start, sigma, single, traces)


def _fact_jobs(model, params: NeuronParams) -> list[dict]:
    """One job per fact: its prompts, answer and the unrelated facts to control on."""
    if not params.facts:
        case = prepare_case(model, params.prompt, params.subject, params.target)
        unrelated = [(text, answer_token(model, ans)) for text, ans in params.unrelated]
        return [{"case_id": None, "target": case.target, "answer": case.answer_id,
                 "prompts": [case.prompt.replace("{}", case.subject), *params.paraphrases], "unrelated": unrelated}]
    jobs = []
    facts = list(params.facts)
    for i, fact in enumerate(facts):
        others = [f for f in facts if f is not fact and (fact.relation_id is None or f.relation_id != fact.relation_id)]
        pick = random.Random(params.seed + i).sample(others, min(params.n_unrelated, len(others)))
        jobs.append({"case_id": fact.case_id, "target": fact.target_true, "answer": answer_token(model, fact.target_true),
                     "prompts": [fact.text, *fact.paraphrase_prompts],
                     "unrelated": [(f.text, answer_token(model, f.target_true)) for f in pick]})
    return jobs


def run_neurons(model, params: NeuronParams = NeuronParams(), progress: Progress | None = None) -> NeuronResult:
    """Find each fact's knowledge neurons and run the suppress / amplify controls."""
    start = time.perf_counter()
    found, rows = [], []
    jobs = _fact_jobs(model, params)
    for job in track(progress if len(jobs) > 1 else None, jobs, "facts"):
        fn = find_neurons(model, job["prompts"], job["answer"], params, job["case_id"], job["target"],
                          progress=progress if len(jobs) == 1 else None)
        groups = {"fact": [(job["prompts"][0], job["answer"])],
                  "paraphrases": [(p, job["answer"]) for p in job["prompts"][1:]],
                  "unrelated": job["unrelated"]}
        rows += control_rows(model, fn, groups, params)
        found.append(fn)
    return NeuronResult(model.cfg.name, params, time.perf_counter() - start, found, pd.DataFrame(rows),
                        model.cfg.n_layers)
