"""`run_trace` and `run_neurons`: the two fact analyses' entry points."""

from __future__ import annotations

import random
import time

import pandas as pd

from interp.analysis.facts.causal_trace import (
    answer_token,
    case_noise,
    embedding_std,
    greedy_token,
    prepare_case,
    trace_case,
)
from interp.analysis.facts.neuron_controls import COLUMNS, control_rows
from interp.analysis.facts.neurons import (
    attribute_many,
    fact_prompts,
    neurons_of,
    refine_fixed,
    refine_relation,
    relation_templates,
)
from interp.analysis.facts.neurons_result import NeuronResult
from interp.analysis.facts.params import NOISE_SUBJECTS, NeuronParams, TraceParams
from interp.analysis.facts.records import draw
from interp.analysis.facts.result import TraceResult
from interp.progress import Progress, track


def traced_facts(params: TraceParams) -> list:
    """The facts to trace: all of params.facts, or params.sample of them drawn at random (params.seed)."""
    return draw(params.facts, params.sample, params.seed)


def trace_sigma(model, params: TraceParams) -> float:
    """The noise scale's sigma: as given, else (as the reference) over every subject of the fact set, a
    sample's unsampled facts included."""
    if params.sigma is not None:
        return params.sigma
    return embedding_std(model, [f.subject for f in params.facts] if params.facts else NOISE_SUBJECTS)


def trace_single(model, params: TraceParams, sigma: float, progress: Progress | None = None):
    """The single prompt traced at every token: (its case, its trace)."""
    case = prepare_case(model, params.prompt, params.subject, params.target)
    return case, trace_case(model, case, case_noise(model, case, params, sigma), params, progress=progress)


def trace_fact(model, fact, single_case, params: TraceParams, sigma: float):
    """One fact of the set traced at its key tokens; "skipped" when the model does not know it (its greedy
    answer is not the true one), None when it is the single prompt itself (already traced at every token;
    never when single_case is None)."""
    fc = prepare_case(model, fact.prompt, fact.subject, fact.target_true, case_id=fact.case_id)
    if params.known_only and greedy_token(model, fc) != fc.answer_id:
        return "skipped"
    c = single_case
    if c is not None and fc.prompt == c.prompt and fc.subject == c.subject and fc.answer_id == c.answer_id:
        return None
    keys = sorted({q for qs in fc.category_positions().values() for q in qs})
    return trace_case(model, fc, case_noise(model, fc, params, sigma), params, positions=keys)


def trace_result(model_name: str, params: TraceParams, seconds: float, sigma: float, single, outcomes: list):
    """The TraceResult of the single trace and each traced fact's outcome (in the fact set's order)."""
    traces = [single if o is None else o for o in outcomes if not isinstance(o, str)]
    skipped = [f.case_id for f, o in zip(traced_facts(params), outcomes) if isinstance(o, str)]
    return TraceResult(model_name, params, seconds, sigma, single, traces, skipped)


def run_trace(model, params: TraceParams = TraceParams(), progress: Progress | None = None) -> TraceResult:
    """Trace params.prompt at every token, and each of params.facts it knows at its key tokens."""
    start = time.perf_counter()
    sigma = trace_sigma(model, params)
    case, single = trace_single(model, params, sigma, progress)
    outcomes = [trace_fact(model, fact, case, params, sigma) for fact in track(progress, traced_facts(params), "facts")]
    return trace_result(model.cfg.name, params, time.perf_counter() - start, sigma, single, outcomes)


def relation_sample(facts, params: NeuronParams, per_relation: int | None) -> list:
    """The facts of params.relations (all when empty), `per_relation` of each drawn at random (params.seed),
    in file order."""
    keep = [f for f in facts if not params.relations or f.relation_id in params.relations]
    if per_relation is None:
        return keep
    chosen: set[int] = set()
    for relation in dict.fromkeys(f.relation_id for f in keep):
        members = [i for i, f in enumerate(keep) if f.relation_id == relation]
        chosen.update(draw(members, per_relation, params.seed))
    return [f for i, f in enumerate(keep) if i in chosen]


def _jobs_of(model, facts: list, pool: list, params: NeuronParams) -> list[dict]:
    """One job per fact: its relation, search prompts, held-out prompts, answer and unrelated facts (from
    `pool`, the part the facts were drawn from, another relation); templates also come from `pool`."""
    jobs = []
    templates = relation_templates(pool)
    for i, fact in enumerate(facts):
        others = [f for f in pool if f is not fact and (fact.relation_id is None or f.relation_id != fact.relation_id)]
        pick = random.Random(params.seed + i).sample(others, min(params.n_unrelated, len(others)))
        # a fact without a relation id is a relation of its own
        relation = fact.relation_id if fact.relation_id is not None else ("fact", i)
        prompts = fact_prompts(fact, templates.get(fact.relation_id, ()), params.max_prompts)
        held = random.Random(f"{params.seed}:{fact.case_id}").sample(range(1, len(prompts)),
                                                                      min(params.heldout, len(prompts) - 1))
        jobs.append({"case_id": fact.case_id, "relation": relation, "target": fact.target_true,
                     "answer": answer_token(model, fact.target_true),
                     "prompts": [t for k, t in enumerate(prompts) if k not in held],
                     "heldout": [prompts[k] for k in sorted(held)],
                     "unrelated": [(f.text, answer_token(model, f.target_true)) for f in pick]})
    return jobs


def _fact_jobs(model, params: NeuronParams) -> list[dict]:
    """One job per fact to report (see `_jobs_of`); the single prompt's job without a fact set."""
    if not params.facts:
        case = prepare_case(model, params.prompt, params.subject, params.target)
        prompts = [case.prompt.replace("{}", case.subject), *params.paraphrases][: params.max_prompts]
        unrelated = [(text, answer_token(model, ans)) for text, ans in params.unrelated]
        held = prompts[len(prompts) - params.heldout:] if params.heldout else []
        return [{"case_id": None, "relation": None, "target": case.target, "answer": case.answer_id,
                 "prompts": prompts[: len(prompts) - len(held)], "heldout": held, "unrelated": unrelated}]
    pool = list(params.facts)
    return _jobs_of(model, relation_sample(pool, params, params.per_relation), pool, params)


def _tune_jobs(model, params: NeuronParams) -> list[dict]:
    """The tuning part's jobs (p is chosen on them); none without tune_facts."""
    pool = list(params.tune_facts)
    return _jobs_of(model, relation_sample(pool, params, params.tune_per_relation), pool, params) if pool else []


def tuned_p(jobs: list[dict], attrs: list, params: NeuronParams) -> dict:
    """relation -> (p, refinement history) tuned on the tuning part's facts of that relation."""
    out = {}
    for relation in dict.fromkeys(job["relation"] for job in jobs):
        idx = [i for i, job in enumerate(jobs) if job["relation"] == relation]
        _, history = refine_relation([attrs[i] for i in idx], params)
        out[relation] = (history[-1]["p"], history)
    return out


def refine_facts(jobs: list[dict], attrs: list, params: NeuronParams, tuned: dict | None = None) -> list:
    """Each fact's FactNeurons: p as tuned on the tuning part for its relation (`tuned`), else tuned over
    the facts of its relation themselves."""
    found: list = [None] * len(jobs)
    for relation in dict.fromkeys(job["relation"] for job in jobs):
        idx = [i for i, job in enumerate(jobs) if job["relation"] == relation]
        if tuned and relation in tuned:
            p, history = tuned[relation]
            units, _ = refine_fixed([attrs[i] for i in idx], p, params)
            where = "tune"
        else:
            units, history = refine_relation([attrs[i] for i in idx], params)
            where = "facts"
        for i, u in zip(idx, units):
            job = jobs[i]
            found[i] = neurons_of(attrs[i], u, history, job["case_id"], job["target"], job["answer"],
                                  None if isinstance(relation, tuple) else relation, job.get("heldout", ()), where)
    return found


def fact_controls(model, job: dict, fn, params: NeuronParams) -> list[dict]:
    """The suppress / amplify control rows of one fact (none when it kept no neuron)."""
    if not fn.neurons:
        return []  # nothing consistent: nothing to suppress
    groups = {"fact": [(job["prompts"][0], job["answer"])],
              "paraphrases": [(p, job["answer"]) for p in job["prompts"][1:]],
              "heldout": [(p, job["answer"]) for p in job.get("heldout", ())],
              "unrelated": job["unrelated"]}
    return control_rows(model, fn, groups, params)


def neuron_result(model_name: str, n_layers: int, params: NeuronParams, seconds: float, found: list,
                  rows: list[dict]) -> NeuronResult:
    return NeuronResult(model_name, params, seconds, found, pd.DataFrame(rows, columns=list(COLUMNS)), n_layers)


def run_neurons(model, params: NeuronParams = NeuronParams(), progress: Progress | None = None) -> NeuronResult:
    """Attribute every fact, refine per relation (p tuned on params.tune_facts when given), then run the
    suppress / amplify controls on each fact that kept neurons."""
    start = time.perf_counter()
    jobs, tune = _fact_jobs(model, params), _tune_jobs(model, params)
    tuned = None
    if tune:
        tuned = tuned_p(tune, attribute_many(model, [(j["prompts"], j["answer"]) for j in tune], params, progress),
                        params)
    attrs = attribute_many(model, [(j["prompts"], j["answer"]) for j in jobs], params, progress)
    found = refine_facts(jobs, attrs, params, tuned)
    rows = [row for job, fn in zip(jobs, found) for row in fact_controls(model, job, fn, params)]
    return neuron_result(model.cfg.name, model.cfg.n_layers, params, time.perf_counter() - start, found, rows)
