"""Causal tracing: batched trace (reuse the corrupted run, batch every cell of a layer, unembed the last
position only) against the reference's one-forward-per-cell loop, on the full trace of one fact.

    .venv/bin/python benchmarks/causal_trace.py                      # a random 12-layer LLaMA-shaped model
    .venv/bin/python benchmarks/causal_trace.py --model smollm2-135m --samples 3

Both compute the same scores from the same noise; the script checks the largest difference (< 1e-4),
reports both wall times and their ratio, and writes benchmarks/causal_trace.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from interp.analysis.facts.causal_trace import (
    KINDS,
    FactCase,
    TraceParams,
    case_noise,
    embedding_std,
    make_noise,
    prepare_case,
    trace_bruteforce,
    trace_case,
)
from interp.model.config import ModelConfig
from interp.model.transformer import Transformer


def random_model() -> Transformer:
    """SmolLM2's shape scaled down (12 layers, d_model 256, vocab 8192): runs in seconds on a laptop CPU."""
    cfg = ModelConfig(name="random-llama-12L", architecture="llama", n_layers=12, d_model=256, n_heads=8,
                      n_kv_heads=4, d_head=32, d_mlp=768, d_vocab=8192, n_ctx=256, rope_base=10_000.0, act="silu")
    torch.manual_seed(0)
    return Transformer(cfg).init_weights(0, std=0.05).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="registered model (default: a random 12-layer model)")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    args = ap.parse_args()
    params = TraceParams(samples=args.samples)
    if args.model:
        from interp.model.load import load_model

        model = load_model(args.model)
        case = prepare_case(model, "The {} is located in the city of", "Eiffel Tower", "Paris")
        noise = case_noise(model, case, params, embedding_std(model))
        what = f"{args.model}, 'The Eiffel Tower is located in the city of' -> ' Paris'"
    else:
        model = random_model()
        tokens = torch.tensor([[11, 523, 87, 901, 4, 77, 310, 29, 64, 5]])  # (1, 10), subject = tokens 1..3
        case = FactCase("x", "s", "t", tokens, [str(t) for t in tokens[0].tolist()], 1, 4, answer_id=42)
        noise = make_noise(args.samples, 3, model.cfg.d_model, 3 * 0.05, seed=0)
        what = "random 12-layer LLaMA-shaped model (d_model 256, vocab 8192), 10 tokens, subject = 3 tokens"
    n_cells = len(KINDS) * case.tokens.shape[1] * model.cfg.n_layers

    with torch.no_grad():
        model(case.tokens)  # warm-up
    t0 = time.perf_counter()
    fast = trace_case(model, case, noise, params)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = trace_bruteforce(model, case, noise, params)
    t_slow = time.perf_counter() - t0
    diff = max(float(np.abs(fast.scores[k] - slow.scores[k]).max()) for k in KINDS)
    assert diff < 1e-4, f"batched and brute-force traces differ by {diff}"

    lines = [
        "# Causal tracing: batched vs one forward per cell", "",
        f"Full trace of one fact ({what}): {len(KINDS)} kinds x {case.tokens.shape[1]} tokens x "
        f"{model.cfg.n_layers} layers = {n_cells} cells, {args.samples} noise samples, window 10, CPU "
        f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, load average "
        f"{os.getloadavg()[0]:.1f} at the end).", "",
        "| method | wall time (s) | cells / s |", "|---|---|---|",
        f"| one forward per cell (reference loop) | {t_slow:.2f} | {n_cells / t_slow:.1f} |",
        f"| batched, corrupted run reused | {t_fast:.2f} | {n_cells / t_fast:.1f} |", "",
        f"Speed-up: **{t_slow / t_fast:.2f}x**. Largest score difference: {diff:.2e} (must be < 1e-4).", "",
        "Command: `.venv/bin/python benchmarks/causal_trace.py" + (f" --model {args.model}" if args.model else "")
        + f" --samples {args.samples}`", "",
        "Wall times depend on the machine and its load; the ratio is what the table is for.",
    ]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
