"""Forward-pass and load speed of interp against transformers and TransformerBridge, in one run.

    .venv/bin/python benchmarks/forward.py [--model smollm2-135m] [--repeats 15]

Every contender runs on the same weights, same inputs, same thread count; the repetitions are interleaved
(round-robin), so load from other processes hits all contenders alike, and we report medians as ratios
to transformers' eager forward. Writes benchmarks/forward.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from _md import goals_block, threads_env, write_keeping_notes

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".md")))
    ap.add_argument("--profile-only", action="store_true", help="only the profile table (printed, not written)")
    args = ap.parse_args()

    from interp.model.load import load_model
    from interp.model.reference import bridge_from_hf, hf_from_gguf

    if args.profile_only:
        ours = load_model(args.model)
        hf_plain, _ = hf_from_gguf(args.model)
        print("\n".join(profile_lines(ours, hf_plain, args.model)))
        return

    # -- load times ---------------------------------------------------------------------------------------
    cold = timed(lambda: load_model(args.model, use_cache=False))
    load_model(args.model)  # make sure the cache exists
    cached = statistics.median(timed(lambda: load_model(args.model)) for _ in range(3))
    hf_load = timed(lambda: hf_from_gguf(args.model))

    ours = load_model(args.model)
    hf, tokenizer = hf_from_gguf(args.model)
    bridge = bridge_from_hf(hf, tokenizer, args.model)  # modifies hf in place: keep a separate copy for HF
    hf_plain, _ = hf_from_gguf(args.model)
    hf_sdpa, _ = hf_from_gguf(args.model, attn="sdpa")  # transformers' default attention

    rows = []
    for batch, length in [(1, 32), (8, 128)]:
        tokens = torch.randint(100, ours.cfg.d_vocab - 100, (batch, length), generator=torch.Generator().manual_seed(0))
        # each lambda is timed within this iteration, before `tokens` is rebound (hence the noqa: B023)
        contenders = {
            "transformers eager forward": lambda: hf_plain(tokens),  # noqa: B023
            "transformers sdpa forward (its default)": lambda: hf_sdpa(tokens),  # noqa: B023
            "interp forward (no hooks)": lambda: ours(tokens),  # noqa: B023
            "interp run_with_cache (every hook)": lambda: ours.run_with_cache(tokens),  # noqa: B023
            "TransformerBridge run_with_cache": lambda: bridge.run_with_cache(tokens),  # noqa: B023
        }
        times: dict[str, list[float]] = {k: [] for k in contenders}
        with torch.no_grad():
            for fn in contenders.values():  # warm-up
                fn()
            for _ in range(args.repeats):
                for name, fn in contenders.items():
                    times[name].append(timed(fn))
        base = statistics.median(times["transformers eager forward"])
        sdpa = statistics.median(times["transformers sdpa forward (its default)"])
        for name, ts in times.items():
            med = statistics.median(ts)
            rows.append((f"{batch}x{length}", name, med * 1000, med / base, med / sdpa))

    lines = [
        "# Forward and load speed",
        "",
        f"Model {args.model}, fp32, "
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), "
        f"torch {torch.__version__}; median of {args.repeats} interleaved runs. Reproduce: "
        f"`{threads_env()}.venv/bin/python benchmarks/forward.py --model {args.model} --repeats {args.repeats}` "
        f"(load average {os.getloadavg()[0]:.1f} at the end, 2 cores).",
        "",
        "| input | contender | median ms | ratio to transformers eager | ratio to transformers sdpa |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {shape} | {name} | {ms:.1f} | {ratio:.2f}x | {r_sdpa:.2f}x |"
              for shape, name, ms, ratio, r_sdpa in rows]
    lines += [
        "",
        "| load | seconds | ratio to transformers' GGUF load |",
        "|---|---:|---:|",
        f"| transformers from GGUF | {hf_load:.2f} | 1.00x |",
        f"| interp cold (dequantize + tokenizer, writes the cache) | {cold:.2f} | {cold / hf_load:.2f}x |",
        f"| interp cached (safetensors) | {cached:.2f} | {cached / hf_load:.3f}x ({hf_load / cached:.0f}x faster) |",
        "",
    ]
    lines += profile_lines(ours, hf_plain, args.model)
    ratio = {(shape, name): (r, r_sdpa) for shape, name, _, r, r_sdpa in rows}
    goals = []
    for shape in ("8x128", "1x32"):
        cache = ratio[(shape, "interp run_with_cache (every hook)")][0]
        bridge = ratio[(shape, "TransformerBridge run_with_cache")][0]
        goals.append((f"full cache <= 1.2x transformers' eager forward, {shape}",
                      f"TransformerBridge's cache {bridge:.2f}x", f"{cache:.2f}x", cache <= 1.2))
    for shape in ("8x128", "1x32"):
        plain = ratio[(shape, "interp forward (no hooks)")][1]
        goals.append((f"hook-free forward <= 1.0x transformers' sdpa forward, {shape}",
                      f"transformers eager {ratio[(shape, 'transformers eager forward')][1]:.2f}x sdpa",
                      f"{plain:.3f}x", plain <= 1.0))
    lines += goals_block(goals)
    print(write_keeping_notes(Path(args.out), lines))


# torch operators grouped by what they do (the profile's rows); anything else is "other operators"
GROUPS = {
    "matrix products (projections, MLP, unembedding)": ("aten::addmm", "aten::mm", "aten::linear", "aten::matmul",
                                                         "aten::bmm", "aten::baddbmm"),
    "attention kernel / softmax": ("aten::_scaled_dot_product", "aten::softmax", "aten::_softmax",
                                   "aten::_safe_softmax"),
    "masking and GQA copies": ("aten::masked_fill", "aten::repeat_interleave", "aten::index_select",
                               "aten::where", "aten::expand"),
    "elementwise (norms, RoPE, SiLU, residual adds)": ("aten::mul", "aten::add", "aten::silu", "aten::pow",
                                                      "aten::mean", "aten::rsqrt", "aten::cat", "aten::neg",
                                                      "aten::sub", "aten::div", "aten::to", "aten::_to_copy",
                                                      "aten::cos", "aten::sin", "aten::tanh"),
    "copies and new tensors (clone, contiguous, empty)": ("aten::copy_", "aten::clone", "aten::contiguous",
                                                           "aten::empty", "aten::zeros", "aten::fill_"),
}


def _group(name: str) -> str:
    for group, prefixes in GROUPS.items():
        if name.startswith(prefixes):
            return group
    return "other operators"


def profile_lines(ours, hf_eager, model_name: str, batch: int = 8, length: int = 128, runs: int = 3) -> list[str]:
    """Where the time goes at batch x length: self CPU time of torch's operators, grouped, per forward,
    for transformers' eager forward, our hook-free forward and our full cache; the rest of the wall time
    (Python: modules, hooks, the cache dict) is "outside torch operators"."""
    from torch.profiler import ProfilerActivity, profile

    tokens = torch.randint(100, ours.cfg.d_vocab - 100, (batch, length), generator=torch.Generator().manual_seed(0))
    contenders = {"transformers eager": lambda: hf_eager(tokens), "interp forward": lambda: ours(tokens),
                  "interp run_with_cache": lambda: ours.run_with_cache(tokens)}
    table: dict[str, dict[str, float]] = {name: {} for name in contenders}
    walls = dict.fromkeys(contenders, 0.0)
    with torch.no_grad():
        for fn in contenders.values():
            fn()  # warm-up
        for _ in range(runs):  # interleaved, so load from other processes hits every column alike
            for name, fn in contenders.items():
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    start = time.perf_counter()
                    fn()
                    walls[name] += (time.perf_counter() - start) * 1000 / runs
                for event in prof.key_averages():
                    g = _group(event.key)
                    table[name][g] = table[name].get(g, 0.0) + event.self_cpu_time_total / 1000 / runs
    names = list(contenders)
    rows = list(GROUPS) + ["other operators"]
    lines = [
        f"### Where the time goes ({batch}x{length}, torch profiler, mean of {runs} interleaved forwards, "
        "ms per forward)", "",
        "Self CPU time of torch's operators, grouped; the profiler itself slows everything, so compare columns, "
        "not these totals with the table above. Reproduce: "
        f"`{threads_env()}.venv/bin/python benchmarks/forward.py --model {model_name} --profile-only` "
        f"({torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at the end).", "",
        "| where | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names),
    ]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(f"{table[n].get(row, 0.0):.1f}" for n in names) + " |")
    inside = {n: sum(table[n].values()) for n in names}
    lines.append("| outside torch operators (Python, hooks, allocation) | "
                 + " | ".join(f"{max(walls[n] - inside[n], 0.0):.1f}" for n in names) + " |")
    lines.append("| wall time under the profiler | " + " | ".join(f"{walls[n]:.1f}" for n in names) + " |")
    return lines + [""]


if __name__ == "__main__":
    main()
