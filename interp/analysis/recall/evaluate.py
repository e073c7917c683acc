"""Scoring recall prompts: teacher-forced log-probability and rank of the answer, greedy accuracy, attention.

Liu et al. (TACL 2024, arXiv:2307.03172) score a model by generating an answer greedily and checking
that a gold answer is a substring of its first line (`is_correct`). That needs a few decoding steps per
example and says nothing when a small model almost never gets it right, so we also measure, from the
same forward pass, the answer's log-probability under teacher forcing (prompt, then the answer's lead
such as ' "' for a JSON value, then the answer tokens) and the vocabulary rank of its first token. For
the key-value tasks, where every distractor's value is known, "choice accuracy" asks whether the gold
value's first token beats the first token of every other value in the context (chance = 1/k).

One batch = one forward of the prompts (left-padded, on top of a shared-prefix cache: see `prefix.py`),
then two branches from that cache: the teacher-forced answer tokens, and greedy decoding. Attention is
read at the position whose next-token prediction is the answer's first token: for the KV tasks that is
the teacher-forced opening quote of the lead (the prompt ends with `value:`, the model writes ' "' and
only then the value), for QA the prompt's last token (`Answer:`). A hook keeps that query row in every
layer (from the teacher-forced branch for KV, from the prompt forward for QA), from which we read the
attention mass on the gold item's tokens and on the average distractor item, per layer and head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from interp.analysis.recall.prefix import Batch, fork, plan_batches, prefix_cache, run_trunk
from interp.analysis.recall.prompts import RecallExample, Span, is_correct, locate_tokens
from interp.errors import InvalidInputError
from interp.model import hook_names
from interp.model.tokenize import bos_prefix, text_ids
from interp.model.transformer import KVCache, Transformer
from interp.progress import Progress, track

KV_LEAD = ' "'  # a JSON value is answered as ' "value"', so the value's tokens follow ' "'
DEFAULT_NEW_TOKENS = {"kv": 32, "kv-words": 5, "qa": 10}


@dataclass(frozen=True)
class Prepared:
    """One example as token ids, with the token spans the analyses need."""

    example: RecallExample
    prompt: list[int]  # the prompt's ids, BOS first when the model wants one
    lead: list[int]  # teacher-forced but not scored (' "' for KV answers)
    answer: list[int]  # teacher-forced and scored
    item_spans: list[Span]  # token [start, end) of each context item
    gold_spans: list[Span]  # the gold item, then its repeat (repeat_gold)
    candidates: list[int] | None  # KV: first answer token of each item's value, in item order


@dataclass
class Score:
    """What one forward (plus greedy decoding) says about one example."""

    logprob: float  # sum of log p over the answer tokens
    first_logprob: float
    rank: int  # 1 = the first answer token is the model's top prediction
    choice_correct: float  # KV: gold value beats every other value in context (nan for QA)
    prediction: str | None  # greedy continuation (None with generate=False)
    correct: float  # is_correct(prediction) (nan with generate=False)
    gold_attention: np.ndarray | None  # (n_layers, n_heads) answer position's attention on the gold item
    distractor_attention: np.ndarray | None  # (n_layers, n_heads) mean over the other items


def prepare(model: Transformer, example: RecallExample, max_new_tokens: int = 0) -> Prepared:
    """Tokenize an example as the model reads it and find its items; refuse one that does not fit."""
    layout = example.layout()
    prompt = model.encode(layout.text)
    # model.encode adds BOS itself (the BOS rule of interp.model.tokenize), so locate without special tokens
    # and shift by it
    shift = len(bos_prefix(model))
    spans = [layout.item_spans[i] for i in range(example.n_items)]
    spans += [layout.repeat_span] if layout.repeat_span else []
    token_spans = [(a + shift, b + shift) for a, b in locate_tokens(model.tokenizer, layout.text, spans,
                                                                    add_special_tokens=False)]
    items = token_spans[: example.n_items]
    gold = [items[example.gold_position]] + token_spans[example.n_items:]
    if example.is_kv:
        lead, answer = text_ids(model, KV_LEAD), text_ids(model, example.answers[0])
        candidates = [text_ids(model, value)[0] for _, value in example.records]
    else:
        lead, answer, candidates = [], text_ids(model, " " + example.answers[0]), None
    if not answer:
        raise InvalidInputError(f"The answer {example.answers[0]!r} tokenizes to nothing.")
    need = len(prompt) + max(len(lead) + len(answer), max_new_tokens)
    if need > model.cfg.n_ctx:
        raise InvalidInputError(
            f"A {example.n_items}-item {example.task} prompt needs {need} tokens with its answer, "
            f"more than {model.cfg.name}'s context of {model.cfg.n_ctx}; use fewer items."
        )
    return Prepared(example, prompt, lead, answer, items, gold, candidates)


def _left_pad(rows: Sequence[Sequence[int]], pad: int, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(r) for r in rows)
    tokens = torch.full((len(rows), n), pad, dtype=torch.long, device=dev)
    mask = torch.zeros((len(rows), n), dtype=torch.bool, device=dev)
    for i, r in enumerate(rows):
        if r:
            tokens[i, n - len(r):] = torch.tensor(list(r), device=dev)
            mask[i, n - len(r):] = True
    return tokens, mask


def _right_pad(rows: Sequence[Sequence[int]], pad: int, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(r) for r in rows)
    tokens = torch.full((len(rows), n), pad, dtype=torch.long, device=dev)
    mask = torch.zeros((len(rows), n), dtype=torch.bool, device=dev)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = torch.tensor(list(r), device=dev)
        mask[i, : len(r)] = True
    return tokens, mask


def _row_hooks(model: Transformer, store: dict[int, torch.Tensor], rows: torch.Tensor) -> list:
    """Hooks keeping, per batch row i, query row `rows[i]` of every layer's pattern: store[layer] (b, h, keys)."""

    def keep(layer: int) -> Callable:
        def hook(pattern: torch.Tensor, hook) -> None:
            b = torch.arange(pattern.shape[0], device=pattern.device)
            store[layer] = pattern[b, :, rows.to(pattern.device), :].detach().float()

        return hook

    return [(hook_names.pattern(layer), keep(layer)) for layer in range(model.cfg.n_layers)]


def answer_query_row(p: Prepared) -> int | None:
    """Where the answer's first token is predicted: the index, in the teacher-forced branch (lead + answer
    without its last token), of the query that predicts it, or None when the prompt's last token does
    (no lead, as for QA)."""
    return len(p.lead) - 1 if p.lead else None


def _mass(rows: torch.Tensor, spans: Sequence[Span]) -> torch.Tensor:
    """Attention mass (layers, heads) on the union of token spans; rows (layers, heads, prompt_len)."""
    return sum(rows[..., a:b].sum(-1) for a, b in spans)


@torch.no_grad()
def _greedy(model: Transformer, cache: KVCache, first: torch.Tensor, max_new_tokens: int) -> list[str]:
    """Greedy continuation from a cache that already holds the prompt; `first` (b,) is its first token."""
    eos, b = model.cfg.eos_token_id, first.shape[0]
    out = [first]
    done = first == eos if eos is not None else torch.zeros_like(first, dtype=torch.bool)
    texts = [""] * b
    for _ in range(max_new_tokens - 1):
        texts = [model.to_string(row) for row in torch.stack(out, 1).tolist()]
        if all(d or "\n" in t for d, t in zip(done.tolist(), texts)):
            break  # only the first line is scored
        step = torch.ones((b, 1), dtype=torch.bool, device=first.device)
        nxt = model(out[-1][:, None], past_kv=cache, attention_mask=step)[:, -1].argmax(-1)
        if eos is not None:
            nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
            done |= nxt == eos
        out.append(nxt)
    ids = torch.stack(out, 1).tolist()  # (b, n_new)
    return [model.to_string(row[: row.index(eos)] if eos in row else row) for row in ids]


@torch.no_grad()
def _score_batch(model: Transformer, items: list[Prepared], batch: Batch, trunk_kvs: dict, generate: bool,
                 max_new_tokens: int, attention: bool) -> list[Score]:
    pad = model.cfg.pad_token_id if model.cfg.pad_token_id is not None else 0
    dev = model.device
    cache = prefix_cache(model, trunk_kvs, batch)
    width = cache.length
    suffixes = [p.prompt[s:] for p, s in zip(items, batch.shared)]
    tokens, mask = _left_pad(suffixes, pad, dev)  # (b, P)
    # attention at the answer position (`answer_query_row`): the prompt's last row, or a teacher-forced row
    query = [answer_query_row(p) for p in items]
    at_prompt = attention and any(q is None for q in query)
    at_forced = attention and any(q is not None for q in query)
    prompt_rows: dict[int, torch.Tensor] = {}
    last_row = torch.full((len(items),), -1, dtype=torch.long, device=dev)
    with model.hooks(fwd_hooks=_row_hooks(model, prompt_rows, last_row) if at_prompt else []):
        resid = model(tokens, return_type="resid", attention_mask=mask, past_kv=cache)
    last = model.logits_from_resid(resid[:, -1:]).float()[:, 0]  # (b, vocab), predicts the first new token

    # teacher forcing: lead + answer on a branch of the prompt cache; token j of lead+answer is predicted
    # by position j-1 of this branch, token 0 by the prompt's last position
    forced = [p.lead + p.answer for p in items]
    logits = last[:, None]
    forced_rows: dict[int, torch.Tensor] = {}
    if max(len(f) for f in forced) > 1:
        tf_tokens, tf_mask = _right_pad([f[:-1] for f in forced], pad, dev)
        tf_query = torch.tensor([0 if q is None else q for q in query], dtype=torch.long, device=dev)
        with model.hooks(fwd_hooks=_row_hooks(model, forced_rows, tf_query) if at_forced else []):
            tf_resid = model(tf_tokens, return_type="resid", attention_mask=tf_mask, past_kv=fork(cache))
        logits = torch.cat([logits, model.logits_from_resid(tf_resid).float()], 1)  # (b, 1 + T, vocab)
    logp = logits.log_softmax(-1)

    predictions = _greedy(model, cache, last.argmax(-1), max_new_tokens) if generate else [None] * len(items)
    scores = []
    for i, p in enumerate(items):
        att = None
        if attention:
            rows = prompt_rows if query[i] is None else forced_rows
            stacked = torch.stack([rows[layer][i] for layer in range(model.cfg.n_layers)])  # (L, h, keys)
            att = _item_attention(p, stacked, batch.shared[i], width, tokens.shape[1])
        scores.append(_item_score(p, logp[i], predictions[i], att))
    return scores


def _item_attention(p: Prepared, stacked: torch.Tensor, shared: int, width: int, suffix_len: int):
    """(gold, mean distractor) attention mass per layer and head from the answer row's attention over the
    batch's keys (L, h, keys): the cached prefix (width keys, of which this prompt's first `shared`), then
    the batch's left-padded suffixes (suffix_len keys); keys past those are the teacher-forced lead."""
    n = len(p.prompt)
    own = torch.cat([stacked[..., width - shared: width],
                     stacked[..., width + suffix_len - (n - shared): width + suffix_len]], -1)  # the prompt's keys
    gold = _mass(own, p.gold_spans).cpu().numpy()
    others = [sp for j, sp in enumerate(p.item_spans) if j != p.example.gold_position]
    return gold, (_mass(own, others).cpu().numpy() / len(others)) if others else 0 * gold


def _item_score(p: Prepared, logp: torch.Tensor, pred: str | None, attention) -> Score:
    """One example's Score from its row of log-probabilities (1 + T, vocab): position j predicts token j
    of lead + answer; attention is _item_attention's pair or None."""
    steps = logp[len(p.lead): len(p.lead) + len(p.answer)]  # (len(answer), vocab)
    token_lp = steps.gather(-1, torch.tensor(p.answer, device=logp.device)[:, None])[:, 0]
    first = steps[0]
    choice = float("nan")
    if p.candidates is not None:
        gold_tok = p.candidates[p.example.gold_position]
        rivals = [c for c in p.candidates if c != gold_tok]
        choice = float(not rivals or bool(first[gold_tok] > first[rivals].max()))
    gold_att, distractor_att = attention if attention is not None else (None, None)
    return Score(
        logprob=float(token_lp.sum()), first_logprob=float(token_lp[0]),
        rank=int((first > first[p.answer[0]]).sum()) + 1, choice_correct=choice, prediction=pred,
        correct=float(is_correct(pred, p.example.answers)) if pred is not None else float("nan"),
        gold_attention=gold_att, distractor_attention=distractor_att,
    )


@dataclass
class ScoringPlan:
    """How `score_examples` runs a set of examples: the prepared prompts, the batches, and how much of each
    trunk some row takes (a trunk's forward runs that many tokens, whichever batch needs it first)."""

    prepared: list[Prepared]
    batches: list[Batch]
    need: dict[int, int]  # trunk -> the longest share any row takes from it
    new_tokens: int


def plan_scoring(model: Transformer, examples: Sequence[RecallExample], *, batch_size: int = 8, generate: bool = True,
                 max_new_tokens: int | None = None, reuse_prefix: bool = False) -> ScoringPlan:
    """Prepare the examples and cut them into batches (see `score_examples`)."""
    if batch_size < 1:
        raise InvalidInputError(f"The batch size must be at least 1, got {batch_size}.")
    new_tokens = max_new_tokens or max((DEFAULT_NEW_TOKENS[e.task] for e in examples), default=1)
    prepared = [prepare(model, e, new_tokens if generate else 0) for e in examples]
    groups: dict[tuple, list[int]] = {}
    for i, e in enumerate(examples):  # prompts of one base example share their start (reuse's groups)
        groups.setdefault((e.example_id, e.n_items, e.query_aware, e.repeat_gold, e.task), []).append(i)
    batches = plan_batches([p.prompt for p in prepared], list(groups.values()), batch_size, reuse_prefix)
    need: dict[int, int] = {}
    for batch in batches:
        for t, s in zip(batch.trunks, batch.shared):
            if t is not None:
                need[t] = max(need.get(t, 0), s)
    return ScoringPlan(prepared, batches, need, new_tokens)


def score_batches(model: Transformer, plan: ScoringPlan, which: Sequence[int], *, generate: bool = True,
                  attention: bool = True, progress: Progress | None = None) -> dict[int, Score]:
    """Run the plan's batches `which` (in that order): {example index: its score}. Any subset of batches gives
    each example the score the whole plan gives it."""
    last_use = {t: n for n in which for t in plan.batches[n].trunks if t is not None}
    out: dict[int, Score] = {}
    trunk_kvs: dict[int, list] = {}
    for n in track(progress, which, "scoring batches"):
        batch = plan.batches[n]
        for t in batch.trunks:
            if t is not None and t not in trunk_kvs:  # one trunk forward per group
                trunk_kvs[t] = run_trunk(model, plan.prepared[t].prompt, plan.need[t])
        scores = _score_batch(model, [plan.prepared[i] for i in batch.rows], batch, trunk_kvs, generate,
                              plan.new_tokens, attention)
        out.update(zip(batch.rows, scores))
        for t in [t for t in trunk_kvs if last_use[t] == n]:
            del trunk_kvs[t]
    return out


def score_examples(
    model: Transformer,
    examples: Sequence[RecallExample],
    *,
    batch_size: int = 8,
    generate: bool = True,
    max_new_tokens: int | None = None,
    attention: bool = True,
    reuse_prefix: bool = False,
    progress: Progress | None = None,
) -> list[Score]:
    """Score every example (in order). With `reuse_prefix`, examples with the same `example_id`, size
    and options share a trunk cache (see `prefix.plan_batches`: used only when it runs fewer token
    positions than length-sorted batches); without it, batches of similar-length prompts fill across
    examples. Scores do not depend on either beyond float noise."""
    if batch_size < 1:
        raise InvalidInputError(f"The batch size must be at least 1, got {batch_size}.")
    if not examples:
        return []
    plan = plan_scoring(model, examples, batch_size=batch_size, generate=generate, max_new_tokens=max_new_tokens,
                        reuse_prefix=reuse_prefix)
    scores = score_batches(model, plan, range(len(plan.batches)), generate=generate, attention=attention,
                           progress=progress)
    return [scores[i] for i in range(len(examples))]
