"""Throughput of lost-in-the-middle scoring: ours (teacher-forced, greedy) vs `transformers`' generate.

Liu et al.'s code scores every example by generating with the model (`transformers` / vLLM). We score
the same prompts three ways on the same GGUF weights, side by side in one run, and report examples/s
and ratios:

  ours, teacher-forced   one forward per prompt (shared-prefix KV cache, left-padded batches)
  ours, greedy           the same forward plus greedy decoding on the prompt's cache, stopping at the
                         first line break (only the first line is scored)
  transformers generate  left-padded batches, greedy, the same max_new_tokens
  transformers forward   one forward (logits) of the same left-padded batches: the cost of one prefill

transformers runs with its default attention (sdpa). Goals (issue 14): teacher-forced scoring within
1.1x of the transformers forward; greedy + scores at least 2x transformers generate; prefix reuse never
slower than no reuse.

Run: .venv/bin/python benchmarks/recall.py [--model smollm2-135m] [--examples 8] [--n-items 20]
Writes benchmarks/recall.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
from _md import goals_block, threads_env, write_keeping_notes

from interp.analysis.recall.evaluate import DEFAULT_NEW_TOKENS, score_examples
from interp.analysis.recall.prompts import is_correct
from interp.analysis.recall.synthetic import make_word_kv_examples
from interp.model.load import load_model


def load_hf(name: str):
    from interp.model.reference import hf_from_gguf

    model, tok = hf_from_gguf(name, attn="sdpa")
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m", choices=["smollm2-135m", "gemma3-270m"])
    ap.add_argument("--examples", type=int, default=8, help="base examples (each at 3 gold positions)")
    ap.add_argument("--n-items", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    k = args.n_items
    examples = make_word_kv_examples(args.examples, k, 0, [0, k // 2, k - 1])
    n, new = len(examples), DEFAULT_NEW_TOKENS["kv-words"]
    ours = load_model(args.model)
    hf, tok = load_hf(args.model)
    load = [os.getloadavg()[0]]

    def our_tf(reuse: bool = True):
        return score_examples(ours, examples, batch_size=args.batch_size, generate=False, attention=False,
                              reuse_prefix=reuse)

    def our_greedy():
        return score_examples(ours, examples, batch_size=args.batch_size, generate=True, attention=False)

    def hf_generate():
        texts = []
        for start in range(0, n, args.batch_size):
            batch = [e.prompt() for e in examples[start:start + args.batch_size]]
            enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=ours.cfg.default_prepend_bos)
            with torch.no_grad():
                gen = hf.generate(**enc, max_new_tokens=new, do_sample=False, pad_token_id=tok.pad_token_id)
            texts += tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return texts

    def hf_forward():
        for start in range(0, n, args.batch_size):
            batch = [e.prompt() for e in examples[start:start + args.batch_size]]
            enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=ours.cfg.default_prepend_bos)
            with torch.no_grad():
                hf(**enc)

    rows = {}
    rows["transformers generate (greedy)"], hf_texts = timed(hf_generate, args.repeats)
    rows["transformers forward (one prefill)"], _ = timed(hf_forward, args.repeats)
    rows["ours, teacher-forced (prefix reuse)"], _ = timed(our_tf, args.repeats)
    rows["ours, teacher-forced (no reuse)"], _ = timed(lambda: our_tf(False), args.repeats)
    rows["ours, greedy + teacher-forced"], greedy = timed(our_greedy, args.repeats)
    load.append(os.getloadavg()[0])
    hf_acc = sum(is_correct(t, e.answers) for t, e in zip(hf_texts, examples)) / n
    our_acc = sum(s.correct for s in greedy) / n
    same = sum(t.split("\n")[0].strip() == s.prediction.split("\n")[0].strip() for t, s in zip(hf_texts, greedy))

    base, prefill = rows["transformers generate (greedy)"], rows["transformers forward (one prefill)"]
    goals = {"ours, teacher-forced (no reuse)": "<= 1.10x the forward",
             "ours, teacher-forced (prefix reuse)": "<= no reuse", "ours, greedy + teacher-forced": ">= 2x generate"}
    lines = [
        f"# Recall scoring throughput ({args.model})", "",
        f"{n} word key-value prompts ({args.examples} examples x gold positions 1, {k // 2 + 1}, {k}; {k} pairs, "
        f"batch {args.batch_size}, {new} new tokens), fp32, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, transformers with sdpa attention; load average "
        f"{min(load):.1f}-{max(load):.1f} during the run (2 cores). Best of {args.repeats}.", "",
        "| method | seconds | examples/s | speed-up vs transformers generate | time / transformers forward | goal |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, sec in rows.items():
        lines.append(f"| {name} | {sec:.2f} | {n / sec:.2f} | {base / sec:.2f}x | {sec / prefill:.2f}x | "
                     f"{goals.get(name, '')} |")
    lines += ["", f"Greedy accuracy: ours {our_acc:.2f}, transformers {hf_acc:.2f}; identical first lines "
                  f"{same}/{n}.", "",
              f"Command: `{threads_env()}.venv/bin/python benchmarks/recall.py --model {args.model} "
              f"--examples {args.examples} --n-items {k} --batch-size {args.batch_size}"
              + (f" --repeats {args.repeats}" if args.repeats != 1 else "") + "`", ""]
    tf, reuse, greedy_s = (rows[k] for k in ("ours, teacher-forced (no reuse)", "ours, teacher-forced (prefix reuse)",
                                             "ours, greedy + teacher-forced"))
    lines += goals_block([
        ("recall, teacher-forced scoring <= 1.1x one transformers forward (sdpa) over the same prompts",
         f"the forward {prefill:.1f} s", f"{tf / prefill:.2f}x", tf / prefill <= 1.1),
        ("recall, greedy + scores >= 2x transformers generate",
         f"generate {base:.1f} s ({base / prefill:.2f}x the forward)", f"{base / greedy_s:.2f}x",
         base / greedy_s >= 2.0),
        ("recall, prefix reuse never slower than no reuse (within 2%, this machine's run-to-run noise)",
         f"no reuse {tf:.1f} s", f"{reuse / tf:.2f}x no reuse", reuse <= tf * 1.02),
    ])
    print(write_keeping_notes(args.out, lines))


if __name__ == "__main__":
    main()
