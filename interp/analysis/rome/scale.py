"""Editing at scale (issue 32): how a model degrades as edits pile up, per editor, and many edits in one command.

`run_edit_scale` writes the facts of a fact file into the model one step after another (ROME / FT / FT-L one
request a step, MEMIT / AlphaEdit a batch of up to ``batch_size`` a step, cut at the checkpoints; `session.py`)
and, after 1, 10, 100, 1,000 edits (``checkpoints``), measures:
- ES / PS / NS (efficacy, paraphrase, neighbourhood; `evaluate.fact_scores`) over every fact edited so far;
- how many earlier edits still hold: of the facts whose rewrite prompt preferred the new target right after
  their own step, the fraction that still do;
- the accuracy on facts never edited (the model's greedy first token is the true answer's; the control facts
  are the next known facts of the file after the edited ones, so it starts at 1);
- the perplexity on a fixed held-out text (by default `experiments/data/heldout/public_domain.txt`, public
  domain; see its SOURCE.md), and its ratio to the unedited model's;
- fluency: the n-gram entropy (ROME's) of sampled continuations of the control facts' generation prompts;
- the Frobenius norm of each edited W_out's change ||W - W0||, and relative to ||W0||;
- seconds per edit (computing and applying, not measuring) and the peak memory.
The collapse rail: the perplexity is also measured every `check_every` steps; above `collapse_factor` (10)
times the unedited model's, the run for that editor stops there, and the result says where. The update-norm
rail flags outliers before they are applied (`session.py`). Every editor starts from the unedited weights,
and the model is restored bit for bit at the end (checked against a hash of every W_out taken before the
first editor, in the result). ``max_minutes`` stops an editor after a checkpoint when the next would not fit.

`run_edit_facts` is `interp edit --facts FILE`: every request of a fact file written with one editor, saved
as one edit file, optionally undone, with the same collapse check (a collapsed model is restored and the
run refused with one sentence, never kept).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd

from interp.analysis.rome.covariance import StatsCache
from interp.analysis.rome.evaluate import fact_scores, known_facts, ngram_entropy, target_nll
from interp.analysis.rome.key import EditRequest
from interp.analysis.rome.session import (
    BATCHED,
    EDITORS,
    EditorParams,
    EditSession,
    OutlierStop,
    heldout_ids,
    peak_memory_mb,
    perplexity,
)
from interp.errors import EditError, InvalidInputError
from interp.model.generate import generate
from interp.progress import Progress, track


@dataclass(frozen=True)
class EditScaleParams:
    facts: str | None = None
    methods: tuple[str, ...] = ("rome", "memit", "alphaedit", "ft-l")
    checkpoints: tuple[int, ...] = (1, 10, 100, 1000)
    batch_size: int = 100  # MEMIT / AlphaEdit requests per step
    known_only: bool = True
    sample: int | None = None  # draw the facts at random (seeded) instead of in file order
    n_control: int = 50  # never-edited facts for the accuracy
    heldout: str | None = None  # a .txt file; None: the shipped public-domain text
    heldout_tokens: int = 1024
    n_gen_prompts: int = 4  # control facts' generation prompts for fluency (0: not measured)
    gen_tokens: int = 50
    check_every: int = 1  # steps between collapse checks (perplexity)
    # per editor: after a checkpoint, stop when the next one would end past this many minutes of editing and
    # measuring (projected at the seconds per edit so far); the result notes where. None: no limit.
    max_minutes: float | None = None
    seed: int = 0
    editors: EditorParams = field(default_factory=EditorParams)

    def __post_init__(self) -> None:
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise InvalidInputError("max-minutes must be a positive number of minutes.")
        bad = [m for m in self.methods if m not in EDITORS]
        if not self.methods or bad:
            raise InvalidInputError(f"Unknown editor {bad[0] if bad else '(none)'}; use {', '.join(EDITORS)}.")
        points = list(self.checkpoints)
        if not points or points[0] < 1 or points != sorted(set(points)):
            raise InvalidInputError("Checkpoints must be increasing positive edit counts, e.g. 1,10,100,1000.")
        for name in ("batch_size", "check_every", "heldout_tokens"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name.replace('_', '-')} must be at least 1.")
        if self.n_control < 0 or self.n_gen_prompts < 0 or self.gen_tokens < 0:
            raise InvalidInputError("Counts of control facts, prompts and tokens must not be negative.")


def split_facts(model, params, records=None) -> tuple[list, list]:
    """(facts to edit in edit order, never-edited control facts): the known facts (or a seeded sample of them) in
    a seeded random order, so the first edits and the controls mix relations (the fact files are grouped by
    relation); the edit set is the first part, the controls the next."""
    from interp.analysis.rome.run import choose_facts, fact_records

    records = fact_records(params, records)
    known = known_facts(model, records) if params.known_only and records else None
    every = SimpleNamespace(sample=params.sample, seed=params.seed, limit=None)  # cut after the shuffle, not before
    chosen, _ = choose_facts(records, known, every, model.cfg.name)
    chosen = [chosen[i] for i in np.random.default_rng(params.seed).permutation(len(chosen))]
    n_edit = min(params.checkpoints[-1], len(chosen) - min(params.n_control, len(chosen) // 2))
    if n_edit < 1:
        raise InvalidInputError("The fact file holds too few facts to edit and keep controls.")
    return chosen[:n_edit], chosen[n_edit:n_edit + params.n_control]


def rewrite_success(model, facts) -> list[bool]:
    """Per fact: does its rewrite prompt prefer the new target to the true one (efficacy, on its own)?"""
    prompts = [f.text for f in facts for _ in (0, 1)]
    targets = [t for f in facts for t in (f.target_true, f.target_new)]
    nll = target_nll(model, prompts, targets)
    return [bool(nll[2 * i + 1] < nll[2 * i]) for i in range(len(facts))]


def fluency(model, prompts: list[str], tokens: int, seed: int) -> float:
    if not prompts or tokens == 0:
        return float("nan")
    texts = generate(model, prompts, max_new_tokens=tokens, temperature=1.0, top_k=5, seed=seed)
    return float(np.mean([ngram_entropy(p + t) for p, t in zip(prompts, texts)]))


class Probe:
    """The measurements of one checkpoint, with what they compare against (the unedited model's values)."""

    def __init__(self, model, params: EditScaleParams, controls: list):
        self.model, self.params, self.controls = model, params, controls
        self.ids = heldout_ids(model, params.heldout, params.heldout_tokens)
        self.gen_prompts = [p for f in controls for p in f.generation_prompts[:1]][: params.n_gen_prompts]
        self.base_ppl = perplexity(model, self.ids)

    def collapsed(self) -> tuple[bool, float]:
        ppl = perplexity(self.model, self.ids)
        return not ppl <= self.params.editors.collapse_factor * self.base_ppl, ppl  # NaN counts as collapsed

    def row(self, edited: list, held_after: list[bool]) -> dict:
        m, p = self.model, self.params
        scores = fact_scores(m, edited) if edited else []
        eff = [s["efficacy"] for s in scores]
        still = [e for e, h in zip(eff, held_after) if h]
        ppl = perplexity(m, self.ids)
        return {"efficacy": _mean(eff), "paraphrase": _mean([s["paraphrase"] for s in scores]),
                "neighborhood": _mean([s["neighborhood"] for s in scores]),
                "earlier_held": _mean(still),
                "control_accuracy": _mean(known_facts(m, self.controls)) if self.controls else np.nan,
                "perplexity": ppl, "perplexity_ratio": ppl / self.base_ppl,
                "fluency": fluency(m, self.gen_prompts, p.gen_tokens, p.seed)}


def _w_out_hashes(model) -> list[str]:
    from interp.analysis.rome.edit import weight_hash

    return [weight_hash(b.mlp.w_out) for b in model.blocks]


def _mean(xs) -> float:
    xs = [float(x) for x in xs if x == x]
    return float(np.mean(xs)) if xs else float("nan")


def run_edit_scale(model, params: EditScaleParams, progress: Progress | None = None, *, records=None):
    """Every editor from the same unedited weights, measured at each checkpoint; the model restored at the end."""
    from interp.analysis.rome.scale_result import EditScaleResult

    start = time.perf_counter()
    edited, controls = split_facts(model, params, records)
    probe = Probe(model, params, controls)
    rows, norms, steps, notes = [], [], [], []
    stats = StatsCache()
    base = {"method": "none", "n_edits": 0, **probe.row([], []), "dw_norm": 0.0, "dw_norm_relative": 0.0,
            "seconds_per_edit": np.nan, "peak_memory_mb": peak_memory_mb(model), "flagged": 0, "collapsed": False}
    restored = {}
    hashes = _w_out_hashes(model)  # every W_out before any editor: the restore is checked against these
    for method in params.methods:
        session = EditSession(model, method, params.editors, stats, progress)
        session.prepare()
        try:
            r, n, s, note = _one_editor(session, edited, probe, params, progress)
        finally:
            restored[method] = session.restore() and _w_out_hashes(model) == hashes
        rows += r
        norms += n
        steps += s
        notes += [note] if note else []
    return EditScaleResult(model.cfg.name, params, time.perf_counter() - start, pd.DataFrame([base] + rows),
                           pd.DataFrame(norms), pd.DataFrame(steps), probe.base_ppl, len(edited), len(controls),
                           restored, notes)


def _one_editor(session: EditSession, edited: list, probe: Probe, params: EditScaleParams, progress):
    """Edit step by step up to the last checkpoint: (checkpoint rows, norm rows, step rows, a note or None)."""
    method, model = session.method, session.model
    facts_by_request: dict[int, object] = {}
    requests = []
    for f in edited:
        r = EditRequest.from_fact(f)
        requests.append(r)
        facts_by_request[id(r)] = f
    held_after: list[bool] = []
    rows, norms, step_rows, note = [], [], [], None
    pending = sorted({min(c, len(edited)) for c in params.checkpoints})  # fewer facts: the last is all of them
    edit_seconds, segment_start, started, measuring, last_measure = 0.0, 0, time.perf_counter(), 0.0, 0.0
    for batch in track(progress, planned_batches(requests, pending, params.batch_size, method), f"{method} edits"):
        facts = [facts_by_request[id(r)] for r in batch]
        try:
            st = session.step(batch)
        except OutlierStop as exc:
            note = f"{method}: {exc}"
            break
        edit_seconds += st.seconds
        held_after += rewrite_success(model, facts)
        collapsed, ppl = (probe.collapsed() if st.index % params.check_every == 0 or session.n_edits >= pending[0]
                          else (False, float("nan")))
        step_rows.append({"method": method, "step": st.index, "n_edits": st.n_edits, "update_norm": st.update_norm,
                          "flagged": st.flagged, "seconds": st.seconds, "perplexity": ppl})
        if collapsed or session.n_edits >= pending[0]:
            done = [facts_by_request[id(r)] for r in session.requests]
            t0 = time.perf_counter()
            row = _checkpoint(session, probe, done, held_after, edit_seconds / (session.n_edits - segment_start))
            last_measure = time.perf_counter() - t0
            measuring += last_measure
            row["collapsed"] = collapsed
            rows.append(row)
            norms += [{"method": method, "n_edits": session.n_edits, "layer": l, "norm": a, "relative": b}
                      for l, (a, b) in session.change_norms().items()]
            edit_seconds, segment_start = 0.0, session.n_edits
            while pending and session.n_edits >= pending[0]:
                pending.pop(0)
            if collapsed:
                note = (f"{method}: collapsed after {session.n_edits} edits (perplexity {ppl:.1f}, "
                        f"{ppl / probe.base_ppl:.1f}x the unedited {probe.base_ppl:.1f}); stopped there.")
                break
            if not pending:
                break
            late = _past_budget(params.max_minutes, time.perf_counter() - started, measuring, last_measure,
                                session.n_edits, pending[0])
            if late:
                note = f"{method}: stopped after {session.n_edits} edits: {late}"
                break
    return rows, norms, step_rows, note


def _past_budget(max_minutes: float | None, elapsed: float, measuring: float, last_measure: float, done: int,
                 next_point: int) -> str | None:
    """Why the next checkpoint does not fit the editor's time budget, or None when it fits or there is no budget.
    Projected: the time so far, the remaining edits at the seconds per edit so far (steps and their checks,
    `measuring` at the checkpoints left out) and one more checkpoint's measuring as long as the last."""
    if max_minutes is None:
        return None
    per_edit = (elapsed - measuring) / done
    projected = elapsed + per_edit * (next_point - done) + last_measure
    if projected <= 60 * max_minutes:
        return None
    return (f"{next_point} edits would take about {projected / 60:.0f} minutes at {per_edit:.1f} s per edit "
            f"so far, past the budget of {max_minutes:g} minutes (--max-minutes).")


def planned_batches(requests: list, checkpoints: list[int], batch_size: int, method: str) -> list[list]:
    """One request a step (ROME, FT, FT-L), or batches of up to `batch_size` cut at the checkpoints (MEMIT,
    AlphaEdit), so every editor is measured after exactly 1, 10, 100, ... edits (batches of 1, 9, 90, 100, ...)."""
    size = batch_size if method in BATCHED else 1
    out, start = [], 0
    for end in checkpoints:
        while start < end:
            out.append(requests[start:min(start + size, end)])
            start = min(start + size, end)
    return out


def _checkpoint(session: EditSession, probe: Probe, done: list, held_after: list[bool], sec_per_edit: float) -> dict:
    change = session.change_norms()
    return {"method": session.method, "n_edits": session.n_edits, **probe.row(done, held_after),
            "dw_norm": max((a for a, _ in change.values()), default=0.0),
            "dw_norm_relative": max((b for _, b in change.values()), default=0.0),
            "seconds_per_edit": sec_per_edit, "peak_memory_mb": peak_memory_mb(session.model),
            "flagged": sum(s.flagged for s in session.steps), "collapsed": False}


# -- interp edit --facts ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class EditFactsParams:
    facts: str
    method: str = "memit"
    batch_size: int = 100
    limit: int | None = None
    sample: int | None = None
    known_only: bool = False  # `edit --facts` writes what it is given
    save: str | None = None
    undo: bool = False
    heldout: str | None = None
    heldout_tokens: int = 1024
    check_every: int = 10
    seed: int = 0
    editors: EditorParams = field(default_factory=EditorParams)

    def __post_init__(self) -> None:
        if self.method not in EDITORS:
            raise InvalidInputError(f"Unknown editor {self.method!r}; use one of {', '.join(EDITORS)}.")
        if self.batch_size < 1 or self.check_every < 1:
            raise InvalidInputError("--batch-size and the check interval must be at least 1.")


def run_edit_facts(model, params: EditFactsParams, progress: Progress | None = None, *, records=None):
    """Write every request of the fact file, check for collapse, save one edit file, undo if asked."""
    from interp.analysis.rome.run import choose_facts, fact_records
    from interp.analysis.rome.scale_result import EditFactsResult

    start = time.perf_counter()
    records = fact_records(params, records)
    known = known_facts(model, records) if params.known_only else None
    facts, _ = choose_facts(records, known, params, model.cfg.name)
    ids = heldout_ids(model, params.heldout, params.heldout_tokens)
    before = {l: b.mlp.w_out.detach().clone() for l, b in enumerate(model.blocks)}
    base_ppl = perplexity(model, ids)
    session = EditSession(model, params.method, params.editors, StatsCache(), progress)
    session.prepare()
    requests = [EditRequest.from_fact(f) for f in facts]
    try:
        ppls = write_requests(session, requests, params.batch_size, ids, base_ppl, params.check_every, progress,
                              "every edit was undone and nothing was saved")
        scores = fact_scores(model, facts)
        saved = str(session.combined().save(params.save)) if params.save else None
    except BaseException:
        session.restore()  # a failed or collapsed run never leaves the model edited
        raise
    norms, undo = session.change_norms(), None
    if params.undo:
        session.restore()
        undo = all(torch_equal(model.blocks[l].mlp.w_out, w) for l, w in before.items())
    return EditFactsResult(model.cfg.name, params, time.perf_counter() - start, facts, scores, session.steps, ppls,
                           base_ppl, saved, undo, norms)


def write_requests(session: EditSession, requests: list, batch_size: int, ids: list[int], base_ppl: float,
                   check_every: int, progress=None, undone: str = "every edit was undone") -> dict[int, float]:
    """Write `requests` through the session (batches of `batch_size` for MEMIT / AlphaEdit, one a step otherwise),
    measuring the held-out perplexity every `check_every` steps and after the last: {step: perplexity}. Above
    the collapse factor times `base_ppl` it raises EditError (the caller restores the session: a collapsed model
    is never kept); `undone` ends that sentence."""
    factor = session.params.collapse_factor
    ppls: dict[int, float] = {}
    batches = session.batches(requests, batch_size)
    for i, batch in enumerate(track(progress, batches, f"{session.method} edits")):
        st = session.step(batch)
        if st.index % check_every == 0 or i == len(batches) - 1:
            ppls[st.index] = ppl = perplexity(session.model, ids)
            if not ppl <= factor * base_ppl:
                raise EditError(f"The model collapsed after {session.n_edits} edits: perplexity on the held-out "
                                f"text rose from {base_ppl:.1f} to {ppl:.1f} (over {factor:g}x); {undone}.")
    return ppls


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


__all__ = ["EditScaleParams", "EditFactsParams", "run_edit_scale", "run_edit_facts", "write_requests", "BATCHED"]
