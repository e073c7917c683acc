"""Benchmark: the one-time cost of ROME's key statistics, and seconds per edit once they are cached
(ROME one at a time vs one MEMIT batch), side by side in one run. Writes benchmarks/rome.md.

    .venv/bin/python benchmarks/rome.py [--model smollm2-135m] [--facts experiments/data/facts.json] [--n 5]

The statistics are first computed in a fresh temporary cache (INTERP_CACHE), so the cold cost is real;
the edits then reuse them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--facts", default="experiments/data/facts.json")
    ap.add_argument("--n", type=int, default=5, help="facts edited (ROME one by one; MEMIT as one batch)")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".md")))
    args = ap.parse_args()
    from interp.analysis.facts.records import load_facts
    from interp.analysis.rome import EditRequest, MEMITParams, ROMEParams, memit_edit, rome_edit
    from interp.analysis.rome.covariance import StatsCache, sample_corpus, second_moment
    from interp.analysis.rome.edit import resolve_layer
    from interp.analysis.rome.hparams import default_memit_layers
    from interp.analysis.rome.key import context_templates
    from interp.model.load import load_model

    load_start = os.getloadavg()[0]
    model = load_model(args.model)
    requests = [EditRequest.from_fact(f) for f in load_facts(args.facts)[: args.n]]
    params = ROMEParams()
    layer = resolve_layer(model, params)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("INTERP_CACHE")
        os.environ["INTERP_CACHE"] = tmp  # cold cache: the one-time cost is measured, not a cache hit
        try:
            stats = StatsCache()  # one cache for the whole run, as run_edit_eval keeps one
            t = time.perf_counter()
            sample_corpus(model, params.stats, cache=stats)
            t_corpus = time.perf_counter() - t
            t = time.perf_counter()
            second_moment(model, layer, params.stats, cache=stats)
            t_keys = time.perf_counter() - t
            t = time.perf_counter()
            context_templates(model, params.context_lengths, params.context_seed, stats)
            t_ctx = time.perf_counter() - t
            memit_layers = default_memit_layers(model.cfg.name, model.cfg.n_layers)
            for l in memit_layers:
                second_moment(model, l, params.stats, cache=stats)
            rome_times = []
            for r in requests:
                t = time.perf_counter()
                e = rome_edit(model, r, params, stats=stats)
                rome_times.append(time.perf_counter() - t)
                e.undo(model)
            t = time.perf_counter()
            e = memit_edit(model, requests, MEMITParams(), stats=stats)
            t_memit = time.perf_counter() - t
            e.undo(model)
        finally:
            if old is None:
                os.environ.pop("INTERP_CACHE", None)
            else:
                os.environ["INTERP_CACHE"] = old
    rows = [
        ("sample corpus (one time, per model)", f"{params.stats.n_tokens} tokens", t_corpus),
        (f"key second moment, layer {layer} (one time, per layer)", f"{params.stats.n_tokens} tokens", t_keys),
        ("context templates (one time, per model)", "20 prefixes", t_ctx),
        ("ROME, seconds per edit (mean of n)", f"n={len(rome_times)}, sd {statistics.pstdev(rome_times):.1f}",
         statistics.mean(rome_times)),
        (f"MEMIT layers {list(memit_layers)}, seconds per edit (one batch)", f"n={len(requests)}", t_memit / len(requests)),
    ]
    lines = [f"# ROME / MEMIT timing on {args.model}", "",
             f"`.venv/bin/python benchmarks/rome.py --model {args.model} --n {args.n}`; torch {torch.__version__}, "
             f"{platform.machine()}, {torch.get_num_threads()} threads, CPU, fp32; load average at the start "
             f"{load_start:.1f}, at the end {os.getloadavg()[0]:.1f}.", "",
             "| step | size | seconds |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c:.1f} |" for a, b, c in rows]
    one_time = t_corpus + t_keys + t_ctx
    lines += ["", f"One-time statistics cost / ROME edit = {one_time / statistics.mean(rome_times):.1f}x; "
              f"MEMIT per edit / ROME per edit = {(t_memit / len(requests)) / statistics.mean(rome_times):.2f}."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    if out.exists():
        text = out.read_text().split("<!-- timing -->")[0] + "<!-- timing -->\n" + text if "<!-- timing -->" in out.read_text() else text
    out.write_text(text)


if __name__ == "__main__":
    main()
