"""Benchmark: seconds per ROME edit and per MEMIT fact (batch of --memit-n) with the key statistics cached,
against the peer, the original algorithm's v*/z loop as the authors' code runs it, transcribed by us (rome/compute_v.py,
memit/compute_z.py: every step one forward of the whole model over every prompt from the tokens, log-softmax
of the logits at every position), side by side in one run, as ratios; and the scores of each edit, to show
the fast loop computes the same edit. Writes the timing section of benchmarks/rome.md.

    .venv/bin/python benchmarks/rome.py [--model smollm2-135m] [--facts experiments/data/facts.json] [--n 3]
                                         [--memit-n 10] [--threads 2]

The peer shares everything but the loop with ours (contexts, keys, statistics, the update formulas), so its
time is a lower bound on the authors' own code's (not run here). Rows:
- peer: the original ROME (MEMIT) with the authors' loop as we transcribed it;
- ours, original algorithm: the same edit with our loop (start at the edit layer, logits only where the loss
  reads them, and the columns before the first subject token cached once: `reuse_prefix`); one row without
  the cache shows what the cache buys;
- ours (`--ours`; MEMIT's default): our update and objective (early stop on the NLL), with and without the
  cache. ROME's default editor is the original algorithm through our loop (it tied with ours on held-out facts).
The one-time costs (sampling the corpus, C per layer, the context templates) are measured first in a fresh
cache (INTERP_CACHE in a temporary folder).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from _md import goals_block


def peer_optimise_delta(model, request, contexts, layer, module, v0, params, shares=None):
    """The authors' compute_v / compute_z loop, transcribed onto our model: the whole model from the tokens at
    every step, the log-softmax of the logits at every position; the reference's objective (||delta|| decay,
    KL(p_delta || p_orig) at the KL prompt's subject token, early stop on the total loss, the last step only
    evaluated) and target_init from the bare prompt. Returns what value.optimise_delta returns."""
    from interp.analysis.rome.value import ValueResult, _prompts, frozen

    tokens, mask, sub_idx, _, tgt = _prompts(model, request, contexts, params.kl_prompt)
    b, n = tokens.shape
    n_rw = b - 1
    targets = torch.full((n_rw, n), -100, dtype=torch.long)
    targets[:, n - len(tgt):] = tgt  # rows are left-padded: every row's target sits at the end
    rows = torch.arange(b)
    delta = torch.zeros(model.cfg.d_model, requires_grad=True)
    state: dict = {}

    def hook(_mod, _inp, out):
        if "init" not in state:
            state["init"] = out[0, sub_idx[0]].detach().clone()
        out = out.clone()
        out[rows, sub_idx] = out[rows, sub_idx] + delta
        return out

    opt = torch.optim.Adam([delta], lr=params.lr)
    kl_init = None
    nll_before = nll_val = float("nan")
    it = 0
    with frozen(model):
        handle = module.register_forward_hook(hook)
        try:
            for it in range(params.steps):
                opt.zero_grad()
                logits = model(tokens, attention_mask=mask)  # (b, n, vocab)
                kl_lp = F.log_softmax(logits[-1, sub_idx[-1]][None].float(), dim=1)
                if kl_init is None:
                    kl_init = kl_lp.detach().clone()
                log_probs = torch.log_softmax(logits[:n_rw].float(), dim=2)
                lp = torch.gather(log_probs, 2, torch.where(targets != -100, targets, 0)[..., None])[..., 0]
                nll = (-(lp * (targets != -100).float()).sum(1) / len(tgt)).mean()
                kl = params.kl_weight * F.kl_div(kl_init, kl_lp, log_target=True, reduction="batchmean")
                init = state["init"]
                loss = nll + kl + params.weight_decay * delta.norm() / init.norm() ** 2
                nll_val = float(nll.detach())
                if it == 0:
                    nll_before = nll_val
                if loss < params.early_stop_nll or it == params.steps - 1:
                    break
                loss.backward()
                opt.step()
                limit = params.clamp_norm_factor * init.norm()
                if delta.norm() > limit:
                    with torch.no_grad():
                        delta[...] = delta * limit / delta.norm()
        finally:
            handle.remove()
    return ValueResult(delta.detach().clone(), float(state["init"].norm()), nll_before, nll_val, it + 1,
                       state["init"])


class peer_loop:
    """Within the block, ROME and MEMIT optimise v* / z with the peer's loop."""

    def __enter__(self):
        import interp.analysis.rome.edit as edit_mod
        import interp.analysis.rome.memit as memit_mod

        self.saved = edit_mod.optimise_delta, memit_mod.optimise_delta
        edit_mod.optimise_delta = memit_mod.optimise_delta = peer_optimise_delta

    def __exit__(self, *exc):
        import interp.analysis.rome.edit as edit_mod
        import interp.analysis.rome.memit as memit_mod

        edit_mod.optimise_delta, memit_mod.optimise_delta = self.saved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--facts", default="experiments/data/facts.json")
    ap.add_argument("--n", type=int, default=3, help="facts edited one at a time by ROME")
    ap.add_argument("--memit-n", type=int, default=10, help="facts in the MEMIT batch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warm", action="store_true",
                    help="use the statistics already cached (no one-time costs measured)")
    ap.add_argument("--no-ablation", action="store_true", help="skip the rows without the prefix cache")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".md")))
    ap.add_argument("--raw", default=str(Path(tempfile.gettempdir()) / "rome-bench-raw.pt"),
                    help="where the raw timings are kept")
    ap.add_argument("--from-raw", action="store_true", help="only rewrite the tables from --raw")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.from_raw:
        from interp.analysis.rome.hparams import default_layer, default_memit_layers as dml

        raw = torch.load(args.raw, weights_only=False)
        write(args, raw, default_layer(args.model, 30), dml(args.model, 30), len(raw["mres"]["peer"][1][1]), 4000)
        return
    from interp.analysis.facts.records import load_facts
    from interp.analysis.rome import EditRequest, MEMITParams, ROMEParams, memit_edit, rome_edit
    from interp.analysis.rome.covariance import StatsCache, sample_corpus, second_moment
    from interp.analysis.rome.edit import resolve_layer
    from interp.analysis.rome.evaluate import fact_scores, known_facts
    from interp.analysis.rome.hparams import default_memit_layers
    from interp.analysis.rome.key import context_templates
    from interp.model.load import load_model

    load_start = os.getloadavg()[0]
    model = load_model(args.model)
    facts = load_facts(args.facts)
    facts = [f for f, k in zip(facts, known_facts(model, facts)) if k][: max(args.n, args.memit_n)]
    rome_facts, memit_facts = facts[: args.n], facts[: args.memit_n]
    ours = ROMEParams.ours()
    original = ROMEParams.reference()
    layer = resolve_layer(model, ours)
    memit_layers = default_memit_layers(model.cfg.name, model.cfg.n_layers)

    def scores(group):
        s = fact_scores(model, group)
        return [(a["efficacy"], a["paraphrase"], a["neighborhood"]) for a in s]

    def run_rome(params, facts, peer=False):
        secs, out, steps = [], [], []
        for f in facts:
            r = EditRequest.from_fact(f)
            t = time.perf_counter()
            with peer_loop() if peer else contextlib.nullcontext():
                e = rome_edit(model, r, params, stats=stats)
            secs.append(time.perf_counter() - t)
            steps.append(e.info["steps"])
            print(f"rome {params.update} peer={peer} cache={params.reuse_prefix} {f.subject}: {secs[-1]:.1f} s, "
                  f"{e.info['steps']} steps", file=sys.stderr, flush=True)
            out.append((e.deltas[0].matrix.clone(), scores([f])[0]))
            e.undo(model)
        return secs, out, steps

    def run_memit(params, peer=False):
        reqs = [EditRequest.from_fact(f) for f in memit_facts]
        t = time.perf_counter()
        with peer_loop() if peer else contextlib.nullcontext():
            e = memit_edit(model, reqs, params, stats=stats)
        sec = time.perf_counter() - t
        print(f"memit {params.update} peer={peer}: {sec:.1f} s", file=sys.stderr, flush=True)
        out = ([d.matrix.clone() for d in e.deltas], scores(memit_facts))
        steps = [z["steps"] for z in e.info["z"]]
        e.undo(model)
        return sec / len(reqs), out, steps

    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("INTERP_CACHE")
        if not args.warm:
            os.environ["INTERP_CACHE"] = tmp  # cold cache: the one-time cost is measured, not a cache hit
        try:
            stats = StatsCache()
            t = time.perf_counter()
            sample_corpus(model, ours.stats, cache=stats)
            t_corpus = time.perf_counter() - t
            t = time.perf_counter()
            second_moment(model, layer, ours.stats, cache=stats)
            t_keys = time.perf_counter() - t
            t = time.perf_counter()
            context_templates(model, ours.context_lengths, ours.context_seed, stats)
            t_ctx = time.perf_counter() - t
            for l in memit_layers:
                second_moment(model, l, ours.stats, cache=stats)
            context_templates(model, MEMITParams.reference().rome.context_lengths, ours.context_seed, stats)
            variants = {"peer": (original, True), "orig-nocache": (replace(original, reuse_prefix=False), False),
                        "orig": (original, False), "ours-nocache": (replace(ours, reuse_prefix=False), False),
                        "ours": (ours, False)}
            if args.no_ablation:
                del variants["orig-nocache"], variants["ours-nocache"]
            # fact by fact, every variant in turn: a change of load on a shared machine hits all rows alike
            res = {key: ([], [], []) for key in variants}
            for f in rome_facts:
                for key, (params, peer) in variants.items():
                    for into, part in zip(res[key], run_rome(params, [f], peer=peer)):
                        into += part
            mref = MEMITParams.reference()
            mres = {
                "peer": run_memit(mref, peer=True),
                "orig": run_memit(mref),
                "ours": run_memit(MEMITParams()),
            }
        finally:
            if old is None:
                os.environ.pop("INTERP_CACHE", None)
            else:
                os.environ["INTERP_CACHE"] = old

        raw = {"res": res, "mres": mres, "t": (t_corpus, t_keys, t_ctx), "load_start": load_start, "warm": args.warm}
        torch.save(raw, args.raw)
    write(args, raw, layer, memit_layers, len(memit_facts), ours.stats.n_tokens)


def write(args, raw, layer, memit_layers, n_memit, n_tokens) -> None:
    """The Markdown tables from the raw results (saved first, so a table can be rewritten with --from-raw)."""
    res, mres, (t_corpus, t_keys, t_ctx), load_start = raw["res"], raw["mres"], raw["t"], raw["load_start"]

    def mean(xs):
        return statistics.mean(xs)

    def fmt_scores(out):
        s = [sc for _, sc in out]
        return " / ".join(f"{mean([x[i] for x in s]):.2f}" for i in range(3))

    def max_diff(a, b):
        return max(float((x[0] - y[0]).abs().max()) for x, y in zip(a, b))

    def same_scores(a, b):
        return all(x[1] == y[1] for x, y in zip(a, b))

    peer_s = mean(res["peer"][0])
    rows = [
        ("peer: original ROME, the authors' loop (our transcription)", "peer", "-"),
        ("ours, original ROME, no prefix cache", "orig-nocache", "peer"),
        ("ours, original ROME (the default editor)", "orig", "peer"),
        ("ours (`--ours`), no prefix cache", "ours-nocache", "-"),
        ("ours (`--ours`)", "ours", "ours, no cache"),
    ]
    lines = [f"# ROME / MEMIT timing on {args.model}", "",
             f"`.venv/bin/python benchmarks/rome.py --model {args.model} --n {args.n} --memit-n {args.memit_n} "
             f"--threads {args.threads}{' --warm' if args.warm else ''}"
             f"{' --no-ablation' if args.no_ablation else ''}`; "
             f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} "
             f"threads, CPU, fp32; load average at the start {load_start:.1f}, at the end {os.getloadavg()[0]:.1f} "
             "(2 cores; compare the ratios, not the seconds).", "",
             f"ROME layer {layer}, {args.n} known facts one at a time, statistics cached:", "",
             "| ROME | s / edit | peer / this | loop steps (mean) | ES / PS / NS after "
             "| max abs diff of the update vs the row compared |",
             "|---|---|---|---|---|---|"]
    for name, key, cmp in rows:
        if key not in res:
            continue
        secs, out, steps = res[key]
        if cmp == "ours, no cache" and "ours-nocache" not in res:
            cmp = "-"
        if cmp == "peer":
            same = same_scores(out, res["peer"][1])
            diff = f"{max_diff(out, res['peer'][1]):.1e} (vs peer; scores {'identical' if same else 'DIFFER'})"
        elif cmp == "ours, no cache":
            same = same_scores(out, res["ours-nocache"][1])
            diff = (f"{max_diff(out, res['ours-nocache'][1]):.1e} "
                    f"(vs no cache; scores {'identical' if same else 'DIFFER'})")
        else:
            diff = "-"
        lines.append(f"| {name} | {mean(secs):.1f} | {peer_s / mean(secs):.1f}x | {mean(steps):.1f} "
                     f"| {fmt_scores(out)} | {diff} |")
    mpeer = mres["peer"][0]

    def mdiff(a, b):
        return max(float((x - y).abs().max()) for x, y in zip(a[1][0], b[1][0]))

    def mscores(r):
        s = r[1][1]
        return " / ".join(f"{mean([x[i] for x in s]):.2f}" for i in range(3))

    lines += ["", f"MEMIT layers {list(memit_layers)}, one batch of {n_memit} known facts:", "",
              "| MEMIT | s / fact | peer / this | z steps (mean) | ES / PS / NS after "
              "| max abs diff of the update vs peer |",
              "|---|---|---|---|---|---|"]
    for name, key in (("peer: original MEMIT, the authors' loop (our transcription)", "peer"),
                      ("ours, original MEMIT (`--reference`)", "orig"), ("ours (the default MEMIT)", "ours")):
        r = mres[key]
        diff = "-" if key != "orig" else (f"{mdiff(r, mres['peer']):.1e} (scores "
                                         f"{'identical' if r[1][1] == mres['peer'][1][1] else 'DIFFER'})")
        lines.append(f"| {name} | {r[0]:.1f} | {mpeer / r[0]:.1f}x | {mean(r[2]):.1f} | {mscores(r)} | {diff} |")
    ours_memit, orig_memit = mres["ours"][0], mres["orig"][0]
    lines += [""] + goals_block([
        (f"ROME <= 3 s per edit ({args.model}, statistics cached, {torch.get_num_threads()} threads)",
         f"the authors' loop (our transcription) {peer_s:.1f} s",
         f"ours {mean(res['ours'][0]):.1f} s ({peer_s / mean(res['ours'][0]):.1f}x the peer); the original ROME, "
         f"the default editor, {mean(res['orig'][0]):.1f} s through our loop",
         mean(res["ours"][0]) <= 3.0),
        (f"MEMIT <= 3 s per fact in a batch of 10 (this run: {n_memit})",
         f"the authors' loop (our transcription) {mpeer:.1f} s",
         f"ours {ours_memit:.1f} s, the original MEMIT through our loop {orig_memit:.1f} s",
         ours_memit <= 3.0 if n_memit >= 10 else None),
    ])
    if raw.get("warm"):
        lines += ["", "Statistics and contexts read from the existing cache (`--warm`): one-time costs not measured."]
    else:
        lines += ["", "One-time costs (fresh cache):", "", "| step | size | seconds |", "|---|---|---|",
                  f"| sample corpus (per model) | {n_tokens} tokens | {t_corpus:.1f} |",
                  f"| key second moment, layer {layer} (per layer) | {n_tokens} tokens | {t_keys:.1f} |",
                  f"| context templates (per model) | 20 prefixes | {t_ctx:.1f} |"]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    if out.exists() and "<!-- timing -->" in out.read_text():
        text = out.read_text().split("<!-- timing -->")[0] + "<!-- timing -->\n" + text
    out.write_text(text)


if __name__ == "__main__":
    main()
