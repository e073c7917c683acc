"""Averaged causal tracing on ROME's own fact set (``known_1000.json``), one fact at a time, resumable.

Meng et al. (2022, Sec. 2 and Fig. 2) average the indirect effects of causal tracing over the 1,209 facts of
``known_1000.json`` that GPT-2 XL knows. This driver does the same for one of our models with the paper's
settings (10 noise samples, noise 3 x sigma with sigma the embedding std over every subject of the file, a
10-layer window for MLP / attention) and the project's rule for "knows" (``TraceParams.known_only``: the
greedy next token is the first token of the true attribute). It visits the facts in a seeded random order
(seed 0; the file is grouped by relation, so any prefix mixes relations), never chosen by outcome, and
appends one line per fact to ``parts.jsonl``: whether the model knows it and, for a known fact, its p_clean,
p_corrupted and the per-layer indirect effect of each kind (resid / mlp / attn) at each token category
(``TraceParams`` categories), with the git commit of the code that computed it. Each fact's numbers are those
``run_trace`` gives for it (``trace_fact`` is the same function). It starts no fact after ``--until`` and, on
a later call with the same command, resumes after the last fact on disk.

``--report`` (and the end of every run) reduces the kept parts: the averaged effects with 95% bootstrap
intervals over facts, the paper's figure (AIE by layer at the last subject token and the last token) and a
table beside the GPT-2 XL values ALGORITHMS.md cites, written in the result protocol.

The reduction is `known_trace_result.KnownTraceResult`; the command line (`known_trace_cli`) runs as this module:

    OMP_NUM_THREADS=1 nice -n 19 python -m interp.analysis.facts.known_trace --model smollm2-135m \\
        --known 200 --until 04:30 --out experiments/results/known-1000-trace/smollm2-135m
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from interp.analysis.facts.known_trace_result import KnownTraceResult, settings_of
from interp.analysis.facts.params import TraceParams
from interp.analysis.recall.kv75 import code_commit
from interp.errors import InvalidInputError

CODE = ("interp/analysis/facts", "interp/model", "interp/interventions", "interp/errors.py")


def trace_order(n: int, seed: int = 0) -> list[int]:
    """The order the facts are visited in: a seeded random permutation of 0..n-1."""
    return [int(i) for i in np.random.default_rng(seed).permutation(n)]


def read_parts(path: Path) -> dict:
    """case id -> its line of parts.jsonl (the last one wins)."""
    from interp.jsonio import read_jsonl_by

    return read_jsonl_by(path, "known_id")


def fact_row(model, fact, params: TraceParams, sigma: float, commit: str) -> dict:
    """One fact's line: known or not, and when known its trace reduced to category x layer effects."""
    from interp.analysis.facts.run import trace_fact

    t0, c0 = time.perf_counter(), time.process_time()
    outcome = trace_fact(model, fact, None, params, sigma)
    row = {"known_id": fact.case_id, "relation_id": fact.relation_id, "subject": fact.subject,
           "target": fact.target_true, "known": not isinstance(outcome, str)}
    if row["known"]:
        row |= {"p_clean": outcome.p_clean, "p_corrupted": outcome.p_corrupted,
                "effects": {k: {c: [None if np.isnan(v) else float(v) for v in arr]
                                for c, arr in outcome.category_effects(k).items()} for k in params.kinds}}
    row |= {"model": model.cfg.name, "commit": commit, "settings": settings_of(params), "sigma": sigma,
            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "load1": os.getloadavg()[0]}
    return row


def run_known_trace(model, out: Path, facts: Sequence | None = None, params: TraceParams = TraceParams(), *,
                    known: int | None = None, until: datetime | None = None, shard: tuple[int, int] = (0, 1),
                    log=print) -> dict:
    """Trace the facts (default: the vendored known_1000) in the seeded order of params.seed, appending one
    line per fact to ``out/parts.jsonl``, skipping those already there; stop before a fact past ``until`` or
    once ``known`` known facts are kept. ``shard=(k, n)``: only every n-th fact of the order from the k-th,
    so n processes (one per core) share one parts file; the file is re-read before each fact (the stop
    counts every process's known facts) and each line is appended under a lock. Returns the parts
    (case id -> line)."""
    from interp.analysis.facts.known import load_known
    from interp.analysis.facts.run import trace_sigma
    from interp.diskcache import one_writer

    facts = list(load_known() if facts is None else facts)
    out.mkdir(parents=True, exist_ok=True)
    parts = out / "parts.jsonl"
    done = read_parts(parts)
    for rec in done.values():
        if rec["settings"] != settings_of(params) or rec["model"] != model.cfg.name:
            raise InvalidInputError(f"{parts} holds facts traced with {rec['model']} at {rec['settings']}, not "
                                    f"{model.cfg.name} at {settings_of(params)}; use another --out.")
    sigma = trace_sigma(model, TraceParams(facts=tuple(facts)))  # over every subject of the file, as the reference
    commit = code_commit(CODE)
    k, n = shard
    for i in trace_order(len(facts), params.seed)[k::n]:
        fact = facts[i]
        done = read_parts(parts) if n > 1 else done  # the other shards' lines too
        n_known = sum(r["known"] for r in done.values())
        if fact.case_id in done:
            continue
        if known is not None and n_known >= known:
            break
        if until is not None and datetime.now(UTC) >= until:
            log(f"stopping at {until:%H:%M} UTC: {len(done)} facts visited, {n_known} known")
            break
        row = fact_row(model, fact, params, sigma, commit)
        with one_writer(parts), parts.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        done[fact.case_id] = row
        n_known += row["known"]
        log(f"{len(done)} visited, {n_known} known: #{fact.case_id} {fact.subject!r} -> {fact.target_true!r} "
            f"{'traced' if row['known'] else 'not known'} ({row['seconds']:.1f} s, load {row['load1']:.2f})")
    return done


def census(model, facts: Sequence | None = None) -> dict:
    """Which facts the model knows (the same rule as the trace's, one forward each), without tracing any:
    the count the averaged trace can reach."""
    from collections import Counter

    from interp.analysis.facts.causal_trace import greedy_token, prepare_case
    from interp.analysis.facts.known import load_known

    facts = list(load_known() if facts is None else facts)
    known = []
    for f in facts:
        case = prepare_case(model, f.prompt, f.subject, f.target_true, case_id=f.case_id)
        if greedy_token(model, case) == case.answer_id:
            known.append(f)
    return {"model": model.cfg.name, "n_set": len(facts), "n_known": len(known),
            "known_by_relation": dict(Counter(f.relation_id for f in known).most_common()),
            "relations_known": len({f.relation_id for f in known}),
            "relations_in_set": len({f.relation_id for f in facts}),
            "known_ids": [f.case_id for f in known], "commit": code_commit(CODE)}


def visited_in_order(done: dict, facts: Sequence, seed: int) -> list[dict]:
    """The kept lines in the visiting order (a prefix of it, unless a line was written by another order)."""
    return [done[facts[i].case_id] for i in trace_order(len(facts), seed) if facts[i].case_id in done]


def build_result(model_name: str, n_layers: int, out: Path, facts: Sequence | None = None,
                 params: TraceParams = TraceParams(), command: str = "") -> KnownTraceResult | None:
    from interp.analysis.facts.known import load_known

    facts = list(load_known() if facts is None else facts)
    rows = visited_in_order(read_parts(out / "parts.jsonl"), facts, params.seed)
    if not rows:
        return None
    return KnownTraceResult(model_name, params, sum(r["seconds"] for r in rows), rows, len(facts), n_layers,
                            command)


def write_result(model_name: str, n_layers: int, out: Path, facts: Sequence | None = None,
                 params: TraceParams = TraceParams(), command: str = "") -> KnownTraceResult | None:
    """Reduce ``out/parts.jsonl`` and write the result protocol's files into ``out`` (None when empty)."""
    result = build_result(model_name, n_layers, out, facts, params, command)
    if result is None:
        return None
    result.write(out)
    (out / "run.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return result


if __name__ == "__main__":  # the command the docs and result files quote; its argument parsing is known_trace_cli
    from interp.analysis.facts.known_trace_cli import main

    main()
