"""CounterFact-style evaluation of fact edits (Meng et al. 2022, section 3.2; the metrics of Table 2).

For each fact, before and after its edit, with p(target) = exp(-mean token NLL of " " + target):
- efficacy: p(new) > p(true) on the rewrite prompt (ES);
- paraphrase: the fraction of paraphrase prompts with p(new) > p(true) (PS);
- neighbourhood: the fraction of neighbour prompts (other subjects, same relation and true answer, chosen
  without asking the model) with p(true) > p(new) (NS), before and after the edit; and the fraction of
  neighbours the edit flips (right before, wrong after): what the edit broke;
- fluency: the weighted bi/tri-gram entropy (weights 2/3, 4/3, bits, over words) of 100 new tokens sampled
  from each generation prompt (top-k 5, seeded), as the paper: repetitive text after a damaging edit scores low.
`edits` facts are edited together: sequential ROME edits stacked one after another, or one MEMIT batch;
then all of them are evaluated and the edits undone. Means come with 95% bootstrap intervals over facts.
By default only facts the model knows are edited (its greedy next token on the rewrite prompt is the
first token of the true answer): rewriting a fact the model never held measures little.

This module holds the measurements; `run.py` runs the evaluation, `result.py` holds what it returns.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from interp.analysis.rome.key import pad_left, target_ids
from interp.analysis.rome.params import EditEvalParams
from interp.model.generate import generate


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
            lp = torch.log_softmax(model.logits_from_resid(resid[r, pos]).float(), -1)  # (len(t), vocab)
            out.append(float(-lp[torch.arange(len(t)), torch.tensor(t)].mean()))
    return np.array(out)


def ngram_entropy(text: str, ns: tuple[int, ...] = (2, 3), weights: tuple[float, ...] = (2 / 3, 4 / 3)) -> float:
    """ROME's fluency measure for one text (rome/experiments/py/eval_utils_counterfact.py,
    compute_n_gram_entropy): the arithmetic mean over n of weight_n * the entropy (bits) of the text's n-gram
    frequencies, over word tokens, case kept. The reference tokenises with nltk.word_tokenize; we split words
    and punctuation marks (\\w+ | one non-space symbol), which agrees with it on plain text."""
    words = re.findall(r"\w+|[^\w\s]", text)
    ents = []
    for n in ns:
        grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
        total = sum(grams.values())
        ents.append(-sum(c / total * math.log2(c / total) for c in grams.values()) if total else 0.0)
    return float(np.mean(np.array(ents) * np.array(weights)))


def bootstrap_weights(k: int, n: int = 1000, seed: int = 0, groups: Sequence | None = None) -> np.ndarray:
    """(n, k): how often each of k items is in each of n bootstrap resamples. Without ``groups`` items are
    drawn with replacement; with a label per item (neighbourhood groups) whole groups are, so facts that
    share prompts stay together (a cluster bootstrap). Singleton groups in item order draw exactly the
    items the plain bootstrap does. The same (k, n, seed, groups) gives the same draws, so rows that
    score the same facts are paired."""
    rng = np.random.default_rng(seed)
    if groups is None:
        labels = np.arange(k)
    else:
        if len(groups) != k:
            raise ValueError(f"{len(groups)} group labels for {k} items")
        first: dict = {}
        labels = np.array([first.setdefault(g, len(first)) for g in groups])  # 0.. in order of appearance
    n_groups = int(labels.max()) + 1 if k else 0
    draws = rng.integers(0, n_groups, size=(n, n_groups))
    counts = np.zeros((n, n_groups))
    np.add.at(counts, (np.arange(n)[:, None], draws), 1)
    return counts[:, labels]


def bootstrap_ci(values: np.ndarray, seed: int = 0, n: int = 1000,
                 groups: Sequence | None = None) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean over items (NaNs dropped), resampling whole groups
    when ``groups`` (a label per value) is given."""
    values = np.asarray(values, dtype=float)
    if groups is not None and len(groups) != len(values):
        raise ValueError(f"{len(groups)} group labels for {len(values)} values")
    keep = ~np.isnan(values)
    values = values[keep]
    if len(values) == 0:
        return (float("nan"), float("nan"))
    kept_groups = None if groups is None else [g for g, k in zip(groups, keep) if k]
    w = bootstrap_weights(len(values), n, seed, kept_groups)  # (n, k)
    means = (w @ values) / w.sum(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def neighborhood_flips(before: dict, after: dict) -> float:
    """The fraction of a fact's neighbour prompts right before the edit (p(true) > p(new)) and wrong after."""
    pairs = list(zip(before["neighborhood_each"], after["neighborhood_each"]))
    return float(np.mean([b and not a for b, a in pairs])) if pairs else np.nan


def fact_scores(model, facts) -> list[dict]:
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
            "neighborhood_each": [bool(t < n) for t, n in p["neighborhood"]],
        })
    return out


@torch.no_grad()
def fact_generations(model, facts, params: EditEvalParams) -> list[list[str]]:
    """Per fact, its first `n_gen_prompts` generation prompts each continued by `gen_tokens` sampled tokens
    (none when either is 0: fluency is then not measured)."""
    if params.gen_tokens == 0 or params.n_gen_prompts == 0:
        return [[] for _ in facts]
    prompts, owners = [], []
    for i, f in enumerate(facts):
        for p in (list(f.generation_prompts) or [f.text])[: params.n_gen_prompts]:
            prompts.append(p)
            owners.append(i)
    texts = generate(model, prompts, max_new_tokens=params.gen_tokens, temperature=1.0, top_k=5, seed=params.seed)
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




def probe(model, text: str, target_new: str, true_answer: str | None, gen_tokens: int) -> dict:
    """p(target_new) (and p(true answer)) after `text`, as exp(-mean token NLL), and a greedy continuation."""
    targets = [target_new] + ([true_answer] if true_answer else [])
    nll = target_nll(model, [text] * len(targets), targets)
    out = {"p_new": math.exp(-float(nll[0]))}
    if true_answer:
        out["p_true"] = math.exp(-float(nll[1]))
    out["generation"] = generate(model, text, max_new_tokens=gen_tokens)
    return out


def first_word(text: str) -> str | None:
    """The answer a continuation starts with: its first word, plus following capitalised words (New York)."""
    match = re.match(r"\s*([\w][\w'\-]*(?: [A-Z][\w'\-]*)*)", text)
    return match.group(1) if match else None
