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
    args = ap.parse_args()

    from interp.model.load import load_model
    from interp.model.reference import bridge_from_hf, hf_from_gguf

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
        contenders = {
            "transformers eager forward": lambda: hf_plain(tokens),
            "transformers sdpa forward (its default)": lambda: hf_sdpa(tokens),
            "interp forward (no hooks)": lambda: ours(tokens),
            "interp run_with_cache (every hook)": lambda: ours.run_with_cache(tokens),
            "TransformerBridge run_with_cache": lambda: bridge.run_with_cache(tokens),
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
        f"Model {args.model}, fp32, CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), "
        f"torch {torch.__version__}; median of {args.repeats} interleaved runs. Reproduce: "
        f"`.venv/bin/python benchmarks/forward.py --model {args.model}`.",
        "",
        "| input | contender | median ms | ratio to transformers eager | ratio to transformers sdpa |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {shape} | {name} | {ms:.1f} | {ratio:.2f}x | {r_sdpa:.2f}x |" for shape, name, ms, ratio, r_sdpa in rows]
    lines += [
        "",
        "| load | seconds | ratio to transformers' GGUF load |",
        "|---|---:|---:|",
        f"| transformers from GGUF | {hf_load:.2f} | 1.00x |",
        f"| interp cold (dequantize + tokenizer, writes the cache) | {cold:.2f} | {cold / hf_load:.2f}x |",
        f"| interp cached (safetensors) | {cached:.2f} | {cached / hf_load:.3f}x ({hf_load / cached:.0f}x faster) |",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
