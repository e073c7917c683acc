"""Sweeps on Ray: `edit-eval` and `trace --facts` over 20 facts, serial vs 2 local Ray workers, side by side
in one run, with Ray's start-up (runtime, actors, one model load per worker) measured separately.

    .venv/bin/python benchmarks/sweep.py                       # SmolLM2, 20 facts, 2 workers of 1 thread
    .venv/bin/python benchmarks/sweep.py --facts 20 --workers 2 --samples 3 --threads 1

Serial: the command's own entry point on a model loaded in this process (load not counted), once with all
the machine's cores (what a user runs without Ray) and once with `--threads` torch threads, the count every
worker gets. Workers: the same analysis through `interp.sweep` with the shard cache off (every shard
computed), the start-up apart. The script checks that the workers' output is identical to the serial run
with the same thread count (JSON apart from seconds, every CSV byte for byte) and writes
benchmarks/sweep.md, with the projection of a full CounterFact edit-eval onto K machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

COUNTERFACT = 21_919


def same_output(a, b) -> bool:
    from interp.jsonio import dumps

    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k not in ("seconds", "seconds_per_edit")}
        return [strip(v) for v in d] if isinstance(d, list) else d

    if dumps(strip(a.to_json())) != dumps(strip(b.to_json())):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        pa, pb = Path(tmp) / "a", Path(tmp) / "b"
        a.write(pa)
        b.write(pb)
        files = sorted(p.relative_to(pa) for p in pa.rglob("*.csv"))
        return all((pa / f).read_bytes() == (pb / f).read_bytes() for f in files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--facts", type=int, default=20, help="facts per sweep")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--samples", type=int, default=10, help="trace noise samples per fact")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each worker and of the serial run "
                    "compared with them (on one machine: its cores / --workers)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    args = ap.parse_args()

    from interp.analysis.facts.params import TraceParams
    from interp.analysis.facts.records import load_facts
    from interp.analysis.facts.run import run_trace
    from interp.analysis.rome import EditEvalParams, run_edit_eval
    from interp.model.load import load_model
    from interp.sweep.engine import Sweep
    from interp.sweep.runtime import start
    from interp.sweep.tasks.edit_eval import sharded_edit_eval
    from interp.sweep.tasks.trace import sharded_trace
    from interp.sweep.worker import ModelSpec

    facts_file = Path(__file__).resolve().parents[1] / "experiments" / "data" / "facts.json"
    records = load_facts(facts_file)
    edit_params = EditEvalParams(facts=str(facts_file), limit=args.facts)
    trace_params = TraceParams(facts=tuple(records[: args.facts]), samples=args.samples)
    threads, all_threads = args.threads, torch.get_num_threads()

    model = load_model(args.model)
    serial, serial_all = {}, {}
    # both lambdas run inside this loop, before `del model` below frees it (not an undefined name)
    for name, run in (("edit-eval", lambda: run_edit_eval(model, edit_params, records=records)),  # noqa: F821
                      ("trace --facts", lambda: run_trace(model, trace_params))):  # noqa: F821
        for n_threads, into in ((all_threads, serial_all), (threads, serial)):
            torch.set_num_threads(n_threads)
            t0 = time.perf_counter()
            into[name] = (run(), time.perf_counter() - t0)
            print(f"serial {name}, {n_threads} threads: {into[name][1]:.1f} s", flush=True)
    del model

    t0 = time.perf_counter()
    runtime = start(workers=args.workers)
    ray_init = time.perf_counter() - t0
    sharded, startup = {}, {}
    for name, driver, params, kwargs in (("edit-eval", sharded_edit_eval, edit_params, {"records": records}),
                                         ("trace --facts", sharded_trace, trace_params, {})):
        t0 = time.perf_counter()
        with Sweep.start(ModelSpec(args.model, "cpu"), runtime=runtime, cache=False, progress=False,
                         threads=threads) as sweep:
            startup[name] = time.perf_counter() - t0
            t1 = time.perf_counter()
            result = driver(sweep, params, **kwargs)
            sharded[name] = (result, time.perf_counter() - t1, sweep.computed)
        print(f"{args.workers} workers {name}: start {startup[name]:.1f} s, run {sharded[name][1]:.1f} s", flush=True)
    runtime.close()

    rows = []
    for name in serial:
        s_res, s_sec = serial[name]
        w_res, w_sec, n_shards = sharded[name]
        rows.append({"sweep": name, "serial_all_s": serial_all[name][1], "serial_s": s_sec, "workers_s": w_sec,
                     "startup_s": startup[name], "shards": n_shards, "identical": same_output(s_res, w_res),
                     "same_as_all_threads": same_output(serial_all[name][0], w_res),
                     "per_fact_serial": serial_all[name][1] / args.facts})
    write(args, rows, ray_init, threads, all_threads)


def write(args, rows, ray_init, threads, all_threads) -> None:
    lines = [f"# Sweeps on Ray: serial vs {args.workers} local workers", "",
             f"Model {args.model}, fp32, CPU ({platform.machine()}, {os.cpu_count()} cores), "
             f"torch {torch.__version__}; "
             f"{args.facts} facts of experiments/data/facts.json; trace with --samples {args.samples}. Each worker "
             f"runs {threads} torch thread(s), and so does the serial run it is compared with (same kernels, so "
             f"the outputs can be compared byte for byte); the serial run with all {all_threads} threads is what "
             f"a user runs without Ray. One run, measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"load average at the end {os.getloadavg()[0]:.1f}. Reproduce: `.venv/bin/python benchmarks/sweep.py "
             f"--model {args.model} --facts {args.facts} --workers {args.workers} --samples {args.samples} "
             f"--threads {threads}`.", "",
             f"Ray runtime start (`ray.init`, local, {args.workers} CPUs): {ray_init:.1f} s, once per command.", "",
             f"| sweep | serial, {all_threads} threads s | serial, {threads} thread(s) s | {args.workers} workers s "
             f"(without start-up) | actors + model loads s | speed-up vs serial {all_threads} threads (with all "
             f"start-up) | vs serial {threads} thread(s) (without start-up) | shards | output identical to serial "
             f"{threads} / {all_threads} threads |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]

    def yes(flag):
        return "yes" if flag else "NO"

    for r in rows:
        total = r["workers_s"] + r["startup_s"] + ray_init
        lines.append(f"| {r['sweep']} | {r['serial_all_s']:.1f} | {r['serial_s']:.1f} | {r['workers_s']:.1f} "
                     f"| {r['startup_s']:.1f} | {r['serial_all_s'] / total:.2f}x "
                     f"| {r['serial_s'] / r['workers_s']:.2f}x "
                     f"| {r['shards']} | {yes(r['identical'])} / {yes(r['same_as_all_threads'])} |")
    ee = next(r for r in rows if r["sweep"] == "edit-eval")
    per_fact = ee["per_fact_serial"]
    lines += ["", "## Full CounterFact edit-eval on K machines (projection, not measured)", "",
              f"Measured serial cost per fact (known-facts filter, statistics cached, scoring before and after, "
              f"the edit, fluency generations, undo): {per_fact:.1f} s on this machine with {all_threads} threads. "
              f"A machine of this kind is one worker with {all_threads} threads; every shard is independent, so the "
              f"sweep divides evenly over workers. CounterFact has {COUNTERFACT:,} facts (all are edited with "
              "--all-facts; with the default filter only those the model knows).", "",
              "| machines K (one worker each, this machine's speed) | hours | per machine: start-up s |",
              "|---:|---:|---:|"]
    startup = ee["startup_s"] + ray_init
    for k in (1, 2, 4, 8, 16, 32, 64):
        hours = (COUNTERFACT * per_fact / k + startup) / 3600
        lines.append(f"| {k} | {hours:.1f} | {startup:.0f} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
