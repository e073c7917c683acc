"""Benchmark: where the seconds of one `interp edit-scale` step go (issue 32), and what the exact speed-up of FT / FT-L
buys, side by side in one run, as ratios. Writes benchmarks/edit_speed.md.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/edit_speed.py [--model smollm2-135m] [--facts FILE] [--n 2]

A step of edit-scale is the edit (computed on the model as it is, then added to W_out), the rewrite check of its
facts (`scale.rewrite_success`) and, every `--check-every` steps, the held-out perplexity (1,024 tokens; the
collapse rail). Rows:
- ROME (sequential, one request): its parts, timed by wrapping the functions that do them: the keys (one
  forward to the edit layer over the 21 prompts), the v* problem's setup (the residual entering the layer, the
  cached prefix), the v* loop's forwards and backwards, the update's direction (C^-1 K), the rest;
- FT-L (one request) as before (`FTParams(reuse_prefix=False)`: the whole model from the tokens every step,
  logits at every position) and after (the layers below the tuned one run once, logits only at the target
  positions), interleaved fact by fact, with the largest difference between the two changes (the same edit to
  float rounding; tests/analysis/rome/test_finetune.py proves it on a tiny model);
- the per-step rails: one perplexity check and one rewrite check.
The facts are the first `--n` of the file's that the model knows; each editor starts from the unedited weights.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from _md import threads_env, write_keeping_notes

HERE = Path(__file__).resolve().parent


class Timers:
    """Cumulative seconds spent inside wrapped callables (outermost calls only, so nested wraps don't double)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.depth = 0

    @contextlib.contextmanager
    def wrap(self, owner, name: str, label: str):
        original = getattr(owner, name)
        timers = self

        def timed(*args, **kwargs):
            if timers.depth:
                return original(*args, **kwargs)
            timers.depth += 1
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timers.depth -= 1
                timers.seconds[label] = timers.seconds.get(label, 0.0) + time.perf_counter() - t0

        setattr(owner, name, timed)
        try:
            yield
        finally:
            setattr(owner, name, original)


def rome_parts(model, request, stats) -> dict[str, float]:
    """One ROME edit (computed, not applied) with its parts timed."""
    import interp.analysis.rome.edit as edit
    import interp.analysis.rome.value as value
    from interp.analysis.rome.hparams import ROMEParams

    t = Timers()
    with contextlib.ExitStack() as stack:
        stack.enter_context(t.wrap(edit, "subject_keys", "keys (forward to the edit layer, 21 prompts)"))
        stack.enter_context(t.wrap(value._Problem, "__init__", "v* setup (residual entering the layer, prefix cache)"))
        stack.enter_context(t.wrap(value._Problem, "terms", "v* loop: forwards (layers 2-29, subject columns on)"))
        stack.enter_context(t.wrap(torch.autograd, "backward", "v* loop: backwards"))
        stack.enter_context(t.wrap(edit, "update_direction", "update direction (C^-1 K, float64)"))
        t0 = time.perf_counter()
        e = edit.rome_edit(model, request, ROMEParams.ours(), apply=False, stats=stats)
        total = time.perf_counter() - t0
    t.seconds["rest"] = total - sum(t.seconds.values())
    t.seconds["total"] = total
    t.seconds["v* steps"] = e.info["steps"]
    return t.seconds


def ft_parts(model, requests, reuse: bool) -> tuple[dict[str, float], torch.Tensor]:
    import interp.analysis.rome.finetune as ft

    t = Timers()
    params = ft.FTParams(reuse_prefix=reuse)
    with t.wrap(ft._Loss, "__call__", "forwards"), t.wrap(torch.autograd, "backward", "backwards"):
        t0 = time.perf_counter()
        e = ft.ft_edit(model, requests, params, apply=False)
        total = time.perf_counter() - t0
    t.seconds["rest (setup, Adam, clamp)"] = total - sum(t.seconds.values())
    t.seconds["total"] = total
    t.seconds["steps"] = e.info["steps"]
    return t.seconds, e.deltas[0].matrix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--facts", default="experiments/data/facts.json")
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "edit_speed.md"))
    args = ap.parse_args()

    from interp import load_model
    from interp.analysis.facts.records import load_facts
    from interp.analysis.rome.covariance import StatsCache
    from interp.analysis.rome.evaluate import known_facts
    from interp.analysis.rome.key import EditRequest
    from interp.analysis.rome.scale import rewrite_success
    from interp.analysis.rome.session import EditSession, heldout_ids, perplexity

    model = load_model(args.model)
    records = load_facts(args.facts)
    facts = []
    for start in range(0, len(records), 20):  # the first n the model knows, read 20 at a time
        chunk = records[start:start + 20]
        facts += [f for f, k in zip(chunk, known_facts(model, chunk)) if k]
        if len(facts) >= args.n:
            break
    facts = facts[:args.n]
    stats = StatsCache()
    EditSession(model, "rome", stats=stats).prepare()  # statistics and contexts read once, outside the timings
    ids = heldout_ids(model, None, 1024)
    perplexity(model, ids)  # warm-up (first-call allocations)

    rome_rows, ft_before, ft_after, diffs, ppl_s, check_s = [], [], [], [], [], []
    for f in facts:  # interleaved: ROME, FT-L before, FT-L after, the rails, fact by fact
        r = EditRequest.from_fact(f)
        rome_rows.append(rome_parts(model, r, stats))
        before, d_before = ft_parts(model, [r], reuse=False)
        after, d_after = ft_parts(model, [r], reuse=True)
        ft_before.append(before)
        ft_after.append(after)
        diffs.append((float((d_before - d_after).abs().max()), float((d_before - d_after).norm() / d_before.norm()),
                      float(((d_before - d_after).abs() > 1e-6).float().mean())))
        t0 = time.perf_counter()
        perplexity(model, ids)
        ppl_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rewrite_success(model, [f])
        check_s.append(time.perf_counter() - t0)

    def mean(rows, key):
        return statistics.mean(r.get(key, 0.0) for r in rows)

    load = os.getloadavg()[0]
    cmd = (f"{threads_env()}.venv/bin/python benchmarks/edit_speed.py --model {args.model} --facts {args.facts} "
           f"--n {args.n}")
    lines = ["# Editing at scale: the seconds of one step", "",
             f"Model {args.model}, fp32, CPU ({platform.machine()}, {torch.get_num_threads()} thread(s)), torch "
             f"{torch.__version__}; {len(facts)} known facts of {args.facts}, each editor from the unedited weights, "
             f"interleaved fact by fact; means over the facts. Load average {load:.1f} at the end (other jobs on this "
             f"2-core machine). Reproduce: `{cmd}`.", "",
             "## ROME, one sequential edit", "", "| part | seconds | share |", "|---|---:|---:|"]
    total = mean(rome_rows, "total")
    for key in rome_rows[0]:
        if key in ("total", "v* steps"):
            continue
        lines.append(f"| {key} | {mean(rome_rows, key):.2f} | {mean(rome_rows, key) / total:.0%} |")
    lines += [f"| **total** ({mean(rome_rows, 'v* steps'):.0f} v* steps on average) | **{total:.2f}** | 100% |", "",
              "## FT-L, one edit: before and after the exact speed-up", "",
              "| part | before (whole model, every logit) s | after (layers below once, target logits) s | "
              "after / before |", "|---|---:|---:|---:|"]
    for key in ft_before[0]:
        if key == "steps":
            continue
        b, a = mean(ft_before, key), mean(ft_after, key)
        lines.append(f"| {'**total**' if key == 'total' else key} | {b:.2f} | {a:.2f} | {a / b:.2f}x |")
    lines += ["", f"The two changes to W_out: largest entry difference {max(d[0] for d in diffs):.2g} (the change is "
              f"clamped at 5e-4 per entry), relative Frobenius difference {max(d[1] for d in diffs):.2g}, "
              f"{max(d[2] for d in diffs):.1%} of entries differ by more than 1e-6 (worst fact); steps "
              f"{mean(ft_before, 'steps'):.0f} before, {mean(ft_after, 'steps'):.0f} after.", "",
              "## The per-step rails", "", "| check | seconds | share of a ROME step | share of an FT-L step (after) |",
              "|---|---:|---:|---:|"]
    ft_total = mean(ft_after, "total")
    for name, xs in (("held-out perplexity (1,024 tokens; every --check-every steps)", ppl_s),
                     ("rewrite check of the step's fact (every step)", check_s)):
        s = statistics.mean(xs)
        lines.append(f"| {name} | {s:.2f} | {s / (total + s):.0%} | {s / (ft_total + s):.0%} |")
    print(write_keeping_notes(Path(args.out), lines))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
