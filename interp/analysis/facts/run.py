"""`run_trace` and `run_neurons`: the two fact analyses' entry points."""

from __future__ import annotations

import random
import time

import pandas as pd

from interp.analysis.facts.causal_trace import (NOISE_SUBJECTS, case_noise, embedding_std, greedy_token, prepare_case,
                                               trace_case)
from interp.analysis.facts.neuron_controls import COLUMNS, answer_token, control_rows
from interp.analysis.facts.neurons import attribute, fact_prompts, neurons_of, refine_relation, relation_templates
from interp.analysis.facts.params import NeuronParams, TraceParams
from interp.analysis.facts.result import NeuronResult, TraceResult
from interp.progress import Progress, track


def run_trace(model, params: TraceParams = TraceParams(), progress: Progress | None = None) -> TraceResult:
    """Trace params.prompt at every token, and each of params.facts at its key tokens."""
    start = time.perf_counter()
    facts = params.facts
    if params.sigma is not None:
        sigma = params.sigma
    else:  # the reference measures sigma over every subject of its fact set
        sigma = embedding_std(model, [f.subject for f in facts] if facts else NOISE_SUBJECTS)
    case = prepare_case(model, params.prompt, params.subject, params.target)
    single = trace_case(model, case, case_noise(model, case, params, sigma), params, progress=progress)
    traces, skipped = [], []
    for fact in track(progress, facts, "facts"):
        fc = prepare_case(model, fact.prompt, fact.subject, fact.target_true, case_id=fact.case_id)
        if params.known_only and greedy_token(model, fc) != fc.answer_id:
            skipped.append(fact.case_id)  # the model does not know it: nothing to locate
            continue
        if fc.prompt == case.prompt and fc.subject == case.subject and fc.answer_id == case.answer_id:
            traces.append(single)  # already traced at every token
            continue
        keys = sorted({q for qs in fc.category_positions().values() for q in qs})
        traces.append(trace_case(model, fc, case_noise(model, fc, params, sigma), params, positions=keys))
    return TraceResult(model.cfg.name, params, time.perf_counter() - start, sigma, single, traces, skipped)


def _fact_jobs(model, params: NeuronParams) -> list[dict]:
    """One job per fact: its relation, prompts, answer and the unrelated facts to control on."""
    if not params.facts:
        case = prepare_case(model, params.prompt, params.subject, params.target)
        prompts = [case.prompt.replace("{}", case.subject), *params.paraphrases][: params.max_prompts]
        unrelated = [(text, answer_token(model, ans)) for text, ans in params.unrelated]
        return [{"case_id": None, "relation": None, "target": case.target, "answer": case.answer_id,
                 "prompts": prompts, "unrelated": unrelated}]
    jobs = []
    facts = list(params.facts)
    templates = relation_templates(facts)
    for i, fact in enumerate(facts):
        others = [f for f in facts if f is not fact and (fact.relation_id is None or f.relation_id != fact.relation_id)]
        pick = random.Random(params.seed + i).sample(others, min(params.n_unrelated, len(others)))
        # a fact without a relation id is a relation of its own
        relation = fact.relation_id if fact.relation_id is not None else ("fact", i)
        jobs.append({"case_id": fact.case_id, "relation": relation, "target": fact.target_true,
                     "answer": answer_token(model, fact.target_true),
                     "prompts": fact_prompts(fact, templates.get(fact.relation_id, ()), params.max_prompts),
                     "unrelated": [(f.text, answer_token(model, f.target_true)) for f in pick]})
    return jobs


def run_neurons(model, params: NeuronParams = NeuronParams(), progress: Progress | None = None) -> NeuronResult:
    """Attribute every fact, refine per relation, then run the suppress / amplify controls on each fact that
    kept neurons."""
    start = time.perf_counter()
    jobs = _fact_jobs(model, params)
    attrs = [attribute(model, job["prompts"], job["answer"], params, progress=progress if len(jobs) == 1 else None)
             for job in track(progress if len(jobs) > 1 else None, jobs, "facts")]
    found: list = [None] * len(jobs)
    for relation in dict.fromkeys(job["relation"] for job in jobs):
        idx = [i for i, job in enumerate(jobs) if job["relation"] == relation]
        units, history = refine_relation([attrs[i] for i in idx], params)
        for i, u in zip(idx, units):
            job = jobs[i]
            found[i] = neurons_of(attrs[i], u, history, job["case_id"], job["target"], job["answer"],
                                  None if isinstance(relation, tuple) else relation)
    rows = []
    for job, fn in zip(jobs, found):
        if not fn.neurons:
            continue  # nothing consistent: nothing to suppress
        groups = {"fact": [(job["prompts"][0], job["answer"])],
                  "paraphrases": [(p, job["answer"]) for p in job["prompts"][1:]],
                  "unrelated": job["unrelated"]}
        rows += control_rows(model, fn, groups, params)
    return NeuronResult(model.cfg.name, params, time.perf_counter() - start, found, pd.DataFrame(rows, columns=list(COLUMNS)),
                        model.cfg.n_layers)
