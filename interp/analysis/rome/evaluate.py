"""CounterFact-style evaluation of fact edits (Meng et al. 2022, section 3.2; the metrics of Table 2).

For each fact, before and after its edit, with p(target) = exp(-mean token NLL of " " + target):
- efficacy: p(new) > p(true) on the rewrite prompt (ES);
- paraphrase: the fraction of paraphrase prompts with p(new) > p(true) (PS);
- neighbourhood: the fraction of neighbour prompts (other subjects, same true answer) that keep
  p(true) > p(new) (NS): what the edit must not break;
- fluency: the weighted bi/tri-gram entropy (weights 2/3, 4/3, bits) of sampled generations from the
  generation prompts (top-k 5, seeded): repetitive text after a damaging edit scores low.
`edits` facts are edited together: sequential ROME edits stacked one after another, or one MEMIT batch;
then all of them are evaluated and the edits undone. Means come with 95% bootstrap intervals over facts.
By default only facts the model knows are edited (its greedy next token on the rewrite prompt is the
first token of the true answer): rewriting a fact the model never held measures little.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from interp.analysis.rome.edit import Edit, rome_edit, undo_all
from interp.analysis.rome.hparams import MEMITParams, ROMEParams
from interp.analysis.rome.key import EditRequest, pad_left, target_ids
from interp.errors import InvalidInputError
from interp.figures import save_figure

METRICS = ("efficacy", "paraphrase", "neighborhood")


@dataclass(frozen=True)
class EditEvalParams:
    facts: str | None = None  # a CounterFact-style file (records are also accepted by run_edit_eval)
    limit: int | None = None  # the first N facts (after the known-facts filter)
    sample: int | None = None  # or N facts drawn at random (seeded), kept in file order: a mix of relations
    known_only: bool = True  # skip facts whose rewrite prompt the model does not already answer correctly
    method: str = "rome"  # "rome" (sequential when edits > 1) or "memit" (one batch of `edits`)
    edits: int = 1  # facts edited together before evaluation
    rome: ROMEParams = field(default_factory=ROMEParams)
    memit: MEMITParams = field(default_factory=MEMITParams)
    gen_tokens: int = 30
    n_gen_prompts: int = 2
    seed: int = 0


@torch.no_grad()
def target_nll(model, prompts: Sequence[str], targets: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Mean token NLL of " " + target after each prompt: (n,)."""
    out: list[float] = []
    for s in range(0, len(prompts), batch_size):
        ps, ts = prompts[s:s + batch_size], targets[s:s + batch_size]
        tgts = [target_ids(model, t) for t in ts]
        seqs = [model.encode(p) + t for p, t in zip(ps, tgts)]
        tokens, mask, _ = pad_left(model, seqs, [0] * len(seqs))
        resid = model(tokens, attention_mask=mask, return_type="resid")  # (b, p, d_model)
        n = tokens.shape[1]
        for r, t in enumerate(tgts):
            pos = torch.arange(n - len(t) - 1, n - 1)
            lp = torch.log_softmax(model.unembed(model.ln_final(resid[r, pos])).float(), -1)  # (len(t), vocab)
            out.append(float(-lp[torch.arange(len(t)), torch.tensor(t)].mean()))
    return np.array(out)


def ngram_entropy(text: str, ns: tuple[int, ...] = (2, 3), weights: tuple[float, ...] = (2 / 3, 4 / 3)) -> float:
    """ROME's fluency measure for one text: the weighted mean of n-gram entropies (bits) over words."""
    words = re.findall(r"\w+|[^\w\s]", text.lower())
    ents = []
    for n in ns:
        grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
        total = sum(grams.values())
        ents.append(-sum(c / total * math.log2(c / total) for c in grams.values()) if total else 0.0)
    return float(np.mean(np.array(ents) * np.array(weights)))


def bootstrap_ci(values: np.ndarray, seed: int = 0, n: int = 1000) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(n, len(values))).mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _scores(model, facts) -> list[dict]:
    """Per fact: NLLs of the true and new targets on every probe prompt, as 0/1 outcomes."""
    prompts, targets, owners = [], [], []
    for i, f in enumerate(facts):
        for kind, ps in (("rewrite", [f.text]), ("paraphrase", f.paraphrase_prompts),
                         ("neighborhood", f.neighborhood_prompts)):
            for p in ps:
                for which, tgt in (("true", f.target_true), ("new", f.target_new)):
                    prompts.append(p)
                    targets.append(tgt)
                    owners.append((i, kind, which))
    nll = target_nll(model, prompts, targets)
    per: list[dict] = [{"rewrite": [], "paraphrase": [], "neighborhood": []} for _ in facts]
    for j in range(0, len(nll), 2):  # pairs: (true, new) of one prompt
        i, kind, _ = owners[j]
        per[i][kind].append((nll[j], nll[j + 1]))
    out = []
    for p in per:
        rw = p["rewrite"][0]
        out.append({
            "p_true": math.exp(-rw[0]), "p_new": math.exp(-rw[1]),
            "efficacy": float(rw[1] < rw[0]),
            "paraphrase": float(np.mean([n < t for t, n in p["paraphrase"]])) if p["paraphrase"] else np.nan,
            "neighborhood": float(np.mean([t < n for t, n in p["neighborhood"]])) if p["neighborhood"] else np.nan,
        })
    return out


@torch.no_grad()
def _generate(model, facts, params: EditEvalParams) -> list[list[str]]:
    prompts, owners = [], []
    for i, f in enumerate(facts):
        for p in (list(f.generation_prompts) or [f.text])[: params.n_gen_prompts]:
            prompts.append(p)
            owners.append(i)
    texts = model.generate(prompts, max_new_tokens=params.gen_tokens, temperature=1.0, top_k=5, seed=params.seed)
    out: list[list[str]] = [[] for _ in facts]
    for i, p, t in zip(owners, prompts, texts):
        out[i].append(p + t)
    return out


@torch.no_grad()
def known_facts(model, facts: Sequence, batch_size: int = 32) -> list[bool]:
    """Per fact: is the model's greedy next token on the rewrite prompt the first token of the true answer?"""
    out: list[bool] = []
    for s in range(0, len(facts), batch_size):
        group = facts[s:s + batch_size]
        tokens, mask, _ = pad_left(model, [model.encode(f.text) for f in group], [0] * len(group))
        top = model(tokens, attention_mask=mask)[:, -1].argmax(-1)
        out += [int(t) == target_ids(model, f.target_true)[0] for t, f in zip(top.tolist(), group)]
    return out


@dataclass
class EditEvalResult:
    model: str
    params: EditEvalParams
    per_fact: pd.DataFrame
    seconds_per_edit: float
    samples: list[dict]  # a before/after generation per group
    n_unknown: int = 0  # facts skipped because the model does not know them (known_only)

    def means(self) -> dict:
        out = {}
        for col in (*METRICS, "fluency", *(f"{m}_before" for m in METRICS), "fluency_before"):
            vals = self.per_fact[col].to_numpy(dtype=float)
            lo, hi = bootstrap_ci(vals, self.params.seed)
            out[col] = {"mean": float(np.nanmean(vals)), "ci95": [lo, hi]}
        return out

    def to_json(self) -> dict:
        m = self.means()
        return {"model": self.model, "n": len(self.per_fact), "skipped_unknown": self.n_unknown, "method": self.params.method,
                "edits": self.params.edits, **{k: m[k]["mean"] for k in (*METRICS, "fluency")},
                "seconds_per_edit": self.seconds_per_edit, "ci95": {k: v["ci95"] for k, v in m.items()},
                "before": {k: m[f"{k}_before"]["mean"] for k in (*METRICS, "fluency")},
                "layers": sorted({int(x) for s in self.per_fact["layers"] for x in str(s).split(",")}),
                "sample": self.samples[0] if self.samples else None}

    def tables(self) -> dict[str, pd.DataFrame]:
        m = self.means()
        summary = pd.DataFrame([{"metric": k, "mean": v["mean"], "ci95_low": v["ci95"][0], "ci95_high": v["ci95"][1]}
                                for k, v in m.items()])
        return {"per_fact": self.per_fact, "summary": summary}

    def save_figures(self, out_dir: Path) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        m = self.means()
        fig, ax = plt.subplots(figsize=(6, 3.5))
        x = np.arange(len(METRICS))
        for off, suffix, label in ((-0.2, "_before", "before edit"), (0.2, "", "after edit")):
            means = [m[k + suffix]["mean"] for k in METRICS]
            err = np.array([[m[k + suffix]["mean"] - m[k + suffix]["ci95"][0],
                             m[k + suffix]["ci95"][1] - m[k + suffix]["mean"]] for k in METRICS]).T
            ax.bar(x + off, means, 0.4, yerr=err, capsize=3, label=label)
        ax.set_xticks(x, METRICS)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{self.params.method.upper()} on {self.model}: {len(self.per_fact)} facts, {self.params.edits} at a time")
        ax.legend()
        path = save_figure(fig, Path(out_dir) / "edit_eval.png", dpi=120)
        return [path]

    def summary_markdown(self) -> str:
        m = self.means()
        lines = [f"### {self.params.method.upper()} on {self.model} ({len(self.per_fact)} facts, {self.params.edits} edits at a time)",
                 "", "| metric | before | after (95% CI) |", "|---|---|---|"]
        for k in (*METRICS, "fluency"):
            a = m[k]
            lines.append(f"| {k} | {m[k + '_before']['mean']:.3f} | {a['mean']:.3f} [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] |")
        lines += ["", f"Seconds per edit (statistics cached): {self.seconds_per_edit:.1f}."]
        if self.n_unknown:
            n = self.n_unknown
            lines += ["", f"{n} fact{'s' if n != 1 else ''} the model does not know {'were' if n != 1 else 'was'} skipped."]
        if self.samples:
            s = self.samples[0]
            lines += ["", f"Before: {s['before']!r}", "", f"After: {s['after']!r}"]
        return "\n".join(lines)


def _edit_group(model, requests: list[EditRequest], params: EditEvalParams, progress) -> list[Edit]:
    if params.method == "rome":
        return [rome_edit(model, r, params.rome) for r in requests]
    from interp.analysis.rome.memit import memit_edit

    return [memit_edit(model, requests, params.memit)]


def run_edit_eval(model, params: EditEvalParams, progress: Callable | None = None, *, records=None) -> EditEvalResult:
    """Edit and evaluate every fact (see module docstring); the model is left unedited afterwards."""
    if params.method not in ("rome", "memit"):
        raise InvalidInputError(f"Unknown edit method {params.method!r}; use rome or memit.")
    if params.edits < 1:
        raise InvalidInputError("--edits must be at least 1.")
    if records is None:
        if params.facts is None:
            raise InvalidInputError("Give a fact file (--facts).")
        from interp.analysis.facts.records import load_facts

        records = load_facts(params.facts)
    records = list(records)
    if not records:
        raise InvalidInputError("The fact file holds no facts.")
    n_all = len(records)
    if params.known_only:
        records = [f for f, k in zip(records, known_facts(model, records)) if k]
        if not records:
            raise InvalidInputError(f"{model.cfg.name} knows none of the {n_all} facts (its greedy answer is never the "
                                    "true one); pass --all-facts to edit them anyway.")
    n_unknown = n_all - len(records)
    if params.sample is not None and params.sample < len(records):
        keep = np.random.default_rng(params.seed).choice(len(records), params.sample, replace=False)
        records = [records[i] for i in sorted(keep)]
    records = records[: params.limit] if params.limit else records
    # statistics first, so seconds_per_edit measures edits with the statistics cached
    from interp.analysis.rome.covariance import second_moment
    from interp.analysis.rome.edit import resolve_layer

    layers = ([resolve_layer(model, params.rome)] if params.method == "rome" else _memit_layers(model, params.memit))
    for layer in layers:
        second_moment(model, layer, (params.rome if params.method == "rome" else params.memit.rome).stats)
    rows, samples, edit_seconds = [], [], 0.0
    groups = [records[i:i + params.edits] for i in range(0, len(records), params.edits)]
    bar = progress(total=len(records), desc=f"{params.method} edits") if progress else None
    for group in groups:
        before = _scores(model, group)
        gen_before = _generate(model, group, params)
        requests = [EditRequest.from_fact(f) for f in group]
        t0 = time.perf_counter()
        edits = _edit_group(model, requests, params, progress)
        edit_seconds += time.perf_counter() - t0
        try:
            after = _scores(model, group)
            gen_after = _generate(model, group, params)
        finally:
            undo_all(model, edits)
        samples.append({"case_id": group[0].case_id, "before": gen_before[0][0], "after": gen_after[0][0]})
        for f, b, a, gb, ga in zip(group, before, after, gen_before, gen_after):
            rows.append({"case_id": f.case_id, "subject": f.subject, "target_true": f.target_true,
                         "target_new": f.target_new, "p_true_before": b["p_true"], "p_new_before": b["p_new"],
                         "p_true_after": a["p_true"], "p_new_after": a["p_new"],
                         **{m: a[m] for m in METRICS}, **{f"{m}_before": b[m] for m in METRICS},
                         "fluency": float(np.mean([ngram_entropy(t) for t in ga])),
                         "fluency_before": float(np.mean([ngram_entropy(t) for t in gb])),
                         "layers": ",".join(str(layer) for e in edits for layer in e.layers),
                         "generation_after": ga[0]})
        if bar is not None:
            bar.update(len(group))
    if bar is not None:
        bar.close()
    return EditEvalResult(model.cfg.name, params, pd.DataFrame(rows), edit_seconds / len(records), samples, n_unknown)


def _memit_layers(model, params: MEMITParams) -> list[int]:
    from interp.analysis.rome.hparams import default_memit_layers

    return list(params.layers or default_memit_layers(model.cfg.name, model.cfg.n_layers))
