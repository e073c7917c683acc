"""`run_edit_eval` (CounterFact-style evaluation of ROME / MEMIT) and `run_edit` (one edit, before and after)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from interp.analysis.facts.records import draw
from interp.analysis.facts.splits import neighbourhood_groups
from interp.analysis.rome.covariance import StatsCache, second_moment
from interp.analysis.rome.edit import Edit, check_target, export_model, resolve_layer, rome_edit, undo_all
from interp.analysis.rome.evaluate import (
    fact_generations,
    fact_scores,
    first_word,
    known_facts,
    neighborhood_flips,
    ngram_entropy,
    probe,
)
from interp.analysis.rome.hparams import MEMITParams, default_memit_layers
from interp.analysis.rome.key import EditRequest
from interp.analysis.rome.params import METRICS, EditEvalParams, EditParams
from interp.analysis.rome.result import EditEvalResult, EditResult
from interp.errors import InvalidInputError
from interp.model.generate import generate
from interp.progress import Progress, track


def run_edit_eval(model, params: EditEvalParams, progress: Progress | None = None, *, records=None) -> EditEvalResult:
    """Edit and evaluate every fact (see `evaluate`); the model is left unedited afterwards."""
    start = time.perf_counter()
    records, n_unknown = select_facts(model, params, records)
    stats = StatsCache()
    # statistics first, so seconds_per_edit measures edits with the statistics cached
    rome = params.rome if params.method == "rome" else params.memit.rome
    for layer in edit_layers(model, params):
        second_moment(model, layer, rome.stats, cache=stats)
    rows, samples, edit_seconds = [], [], 0.0
    groups = [records[i:i + params.edits] for i in range(0, len(records), params.edits)]
    for group in track(progress, groups, f"{params.method} edits"):
        group_rows, sample, seconds = evaluate_group(model, group, params, stats)
        rows += group_rows
        samples += [sample] if sample else []
        edit_seconds += seconds
    label_groups(rows, records)
    return EditEvalResult(model.cfg.name, params, time.perf_counter() - start, pd.DataFrame(rows),
                          edit_seconds / len(records), samples, n_unknown)


def label_groups(rows: list[dict], records: list) -> list[dict]:
    """Give each fact's row its neighbourhood group (rows and records in the same order): facts sharing a prompt,
    or a relation and true object, are one cluster of the bootstrap (`EditEvalResult.means`)."""
    for row, label in zip(rows, neighbourhood_groups(records), strict=True):
        row["group"] = label
    return rows


def fact_records(params: EditEvalParams, records=None) -> list:
    """The facts to choose from: as given, else read from params.facts."""
    if records is None:
        if params.facts is None:
            raise InvalidInputError("Give a fact file (--facts).")
        from interp.analysis.facts.records import load_facts

        records = load_facts(params.facts)
    return list(records)


def choose_facts(records: list, known: list[bool] | None, params: EditEvalParams, model_name: str) -> tuple[list, int]:
    """Known facts only (`known`: a flag per record, None: keep every fact), sampled or cut to the limit; and how
    many were skipped as unknown."""
    if not records:
        raise InvalidInputError("The fact file holds no facts.")
    n_all = len(records)
    if known is not None:
        records = [f for f, k in zip(records, known) if k]
        if not records:
            raise InvalidInputError(f"{model_name} knows none of the {n_all} facts (its greedy answer is never the "
                                    "true one); pass --all-facts to edit them anyway.")
    n_unknown = n_all - len(records)
    records = draw(records, params.sample, params.seed)
    return (records[: params.limit] if params.limit else records), n_unknown


def select_facts(model, params: EditEvalParams, records=None) -> tuple[list, int]:
    """The facts to edit (read from params.facts unless given): known ones only (unless asked), sampled or
    cut to the limit; and how many were skipped as unknown."""
    records = fact_records(params, records)
    known = known_facts(model, records) if params.known_only and records else None
    return choose_facts(records, known, params, model.cfg.name)


def edit_layers(model, params: EditEvalParams) -> list[int]:
    if params.method == "rome":
        return [resolve_layer(model, params.rome)]
    return _memit_layers(model, params.memit)


def _memit_layers(model, params: MEMITParams) -> list[int]:
    return list(params.layers or default_memit_layers(model.cfg.name, model.cfg.n_layers))


def _edit_group(model, requests: list[EditRequest], params: EditEvalParams, stats: StatsCache) -> list[Edit]:
    if params.method == "rome":
        return [rome_edit(model, r, params.rome, stats=stats) for r in requests]
    from interp.analysis.rome.memit import memit_edit

    return [memit_edit(model, requests, params.memit, stats=stats)]


def mean_entropy(texts: list[str]) -> float:
    """The mean n-gram entropy of the generations (NaN without any: fluency not measured)."""
    return float(np.mean([ngram_entropy(t) for t in texts])) if texts else float("nan")


def evaluate_group(model, group: list, params: EditEvalParams, stats: StatsCache) -> tuple[list[dict], dict, float]:
    """Score the facts, edit them together, score again, undo: (one row per fact, a sample, edit seconds)."""
    before = fact_scores(model, group)
    gen_before = fact_generations(model, group, params)
    requests = [EditRequest.from_fact(f) for f in group]
    t0 = time.perf_counter()
    edits = _edit_group(model, requests, params, stats)
    seconds = time.perf_counter() - t0
    try:
        after = fact_scores(model, group)
        gen_after = fact_generations(model, group, params)
    finally:
        undo_all(model, edits)
    rows = [{"case_id": f.case_id, "subject": f.subject, "target_true": f.target_true,
             "target_new": f.target_new, "p_true_before": b["p_true"], "p_new_before": b["p_new"],
             "p_true_after": a["p_true"], "p_new_after": a["p_new"],
             **{m: a[m] for m in METRICS}, **{f"{m}_before": b[m] for m in METRICS},
             "neighborhood_flipped": neighborhood_flips(b, a),
             "fluency": mean_entropy(ga), "fluency_before": mean_entropy(gb),
             "layers": ",".join(str(layer) for e in edits for layer in e.layers),
             "generation_after": ga[0] if ga else ""}
            for f, b, a, gb, ga in zip(group, before, after, gen_before, gen_after)]
    sample = ({"case_id": group[0].case_id, "before": gen_before[0][0], "after": gen_after[0][0]}
              if gen_before[0] else None)
    return rows, sample, seconds


def run_edit(model, params: EditParams, progress: Progress | None = None) -> EditResult:
    """Compute (or load) one edit and probe the model before and after it: p(new target), p(true answer),
    greedy continuations; then save / export / undo as asked. Without `undo` the edit stays applied."""
    start = time.perf_counter()
    if params.load is not None:
        edit = Edit.load(params.load, model)
        request = edit.requests[0]
    else:
        request = EditRequest(params.prompt, params.subject, params.target)
        check_target(model, request)
        edit = rome_edit(model, request, params.rome, apply=False, progress=progress)
    original = {d.layer: model.blocks[d.layer].mlp.w_out.detach().clone() for d in edit.deltas}
    true_answer = request.target_true or first_word(generate(model, request.text, max_new_tokens=5))
    before = probe(model, request.text, request.target_new, true_answer, params.gen_tokens)
    edit.apply(model)
    try:
        after = probe(model, request.text, request.target_new, true_answer, params.gen_tokens)
        exported = str(export_model(model, params.export)) if params.export is not None else None
        saved = str(edit.save(params.save)) if params.save is not None else None
    except BaseException:
        edit.undo(model)  # a failed run never leaves the model edited
        raise
    undo = None
    if params.undo:
        edit.undo(model)
        undo = {"weights_restored_exactly": all(torch.equal(model.blocks[l].mlp.w_out, w) for l, w in original.items()),
                "generation": generate(model, request.text, max_new_tokens=params.gen_tokens)}
    return EditResult(model.cfg.name, params, time.perf_counter() - start, edit, request, true_answer, before, after,
                      undo, saved, exported)
