"""Shared-prefix KV-cache reuse: run the common start of many prompts once, then only their suffixes.

In a position sweep the prompts of one base example agree token for token up to the first place they
differ: the instruction, then every item before the gold one (distractors keep their order when the
gold item moves). A causal model's keys and values at position t depend only on tokens 0..t, so the
cache of one "trunk" prompt, cut at token s, *is* the cache of any prompt that shares its first s
tokens. `plan_batches` picks a trunk per group and the shared length of each member, and keeps the plan
only when it runs fewer token positions than plain length-sorted batches (so reuse is never the slower
choice); `prefix_cache` lays the trunks' cut caches out as one left-padded `KVCache` for a batch (rows
of several groups, each on its own trunk), so the batch's suffixes (also left-padded) run on top of it.
Padding sits in the middle of a row (between its cached prefix and its suffix); the model takes positions
from the mask, so a row's positions and scores are exactly those of its unpadded prompt.

A `KVCache` grows by concatenation (`torch.cat` makes new tensors; the old ones are never written), so
`fork` may share the tensors between branches: each branch gets its own lists, and appending to one
never changes another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interp.model.transformer import KVCache, Transformer


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


@dataclass(frozen=True)
class Batch:
    """Rows (indices into the caller's list) that run together, each on its group's trunk or on nothing."""

    rows: tuple[int, ...]
    trunks: tuple[int | None, ...]  # per row: index of its trunk prompt, None when nothing is shared
    shared: tuple[int, ...]  # per row: how many leading tokens come from the trunk's cache


def plan_cost(prompts: Sequence[Sequence[int]], batches: Sequence[Batch]) -> int:
    """Token positions a plan runs: each batch padded to its longest suffix, plus one forward per trunk
    over the longest share any row takes from it."""
    need: dict[int, int] = {}
    for b in batches:
        for t, s in zip(b.trunks, b.shared):
            if t is not None:
                need[t] = max(need.get(t, 0), s)
    padded = sum(len(b.rows) * max(len(prompts[i]) - s for i, s in zip(b.rows, b.shared)) for b in batches)
    return padded + sum(need.values())


def plan_batches(
    prompts: Sequence[Sequence[int]], groups: Sequence[Sequence[int]], batch_size: int, reuse: bool = True
) -> list[Batch]:
    """Split the prompts into batches; with `reuse`, give each group of prompts a trunk.

    Without reuse, batches of similar-length prompts fill across groups. With reuse, the trunk of a group
    is the member sharing the most tokens with the others; every row keeps at least its last token out of
    the cache, so the forward always produces that token's logits; rows are taken group after group (a
    trunk is needed only by neighbouring batches) and, inside a group, by suffix length, and batches fill
    across groups. The reuse plan is returned only when it runs fewer token positions (`plan_cost`) than
    the plan without reuse, so asking for reuse never costs more than not asking.
    """
    everyone = sorted((i for g in groups for i in g), key=lambda i: (len(prompts[i]), i))  # similar lengths pad less
    plain = [Batch(tuple(rows), (None,) * len(rows), (0,) * len(rows))
             for rows in (everyone[k:k + batch_size] for k in range(0, len(everyone), batch_size))]
    if not reuse:
        return plain
    order: list[tuple[int, int | None, int]] = []  # (row, trunk, shared)
    for group in groups:
        trunk = None
        if len(group) > 1:
            totals = {i: sum(common_prefix_len(prompts[i], prompts[j]) for j in group if j != i) for i in group}
            trunk = max(group, key=lambda i: (totals[i], -i))
        members = []
        for i in group:
            s = 0 if trunk is None else min(common_prefix_len(prompts[i], prompts[trunk]), len(prompts[i]) - 1)
            members.append((i, trunk if s else None, s))
        order += sorted(members, key=lambda m: (len(prompts[m[0]]) - m[2], m[0]))
    reused = [Batch(*(tuple(col) for col in zip(*order[k:k + batch_size]))) for k in range(0, len(order), batch_size)]
    return reused if plan_cost(prompts, reused) < plan_cost(prompts, plain) else plain


@torch.no_grad()
def run_trunk(model: Transformer, ids: Sequence[int], length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Keys and values, (1, length, g, d) per layer, of the first `length` tokens of `ids`."""
    cache = KVCache(model.cfg.n_layers)
    tokens = torch.tensor([list(ids[:length])], device=model.device)
    model(tokens, return_type=None, past_kv=cache)
    return [(layer.k, layer.v) for layer in cache.layers]


def prefix_cache(
    model: Transformer, trunk_kvs: dict[int, list[tuple[torch.Tensor, torch.Tensor]]], batch: Batch
) -> KVCache:
    """A batch cache holding, for row i, the first shared[i] keys/values of its trunk (`trunk_kvs[trunk]`,
    as `run_trunk` returns them), left-padded to max(shared)."""
    cache = KVCache(model.cfg.n_layers)
    width = max(batch.shared)
    if width == 0:
        return cache
    b, dev = len(batch.shared), model.device
    mask = torch.zeros((b, width), dtype=torch.bool, device=dev)
    positions = torch.zeros((b, width), dtype=torch.long, device=dev)
    for row, s in enumerate(batch.shared):
        mask[row, width - s:] = True
        positions[row, width - s:] = torch.arange(s, device=dev)
    for layer, mine in enumerate(cache.layers):
        k0, v0 = next(trunk_kvs[t][layer] for t in batch.trunks if t is not None)
        lk = k0.new_zeros((b, width, *k0.shape[2:]))  # (b, width, g, d)
        lv = v0.new_zeros((b, width, *v0.shape[2:]))
        for row, (t, s) in enumerate(zip(batch.trunks, batch.shared)):
            if s:
                k, v = trunk_kvs[t][layer]
                lk[row, width - s:] = k[0, :s]
                lv[row, width - s:] = v[0, :s]
        mine.k, mine.v = lk, lv
    cache.positions, cache.mask = positions, mask
    return cache


def fork(cache: KVCache) -> KVCache:
    """An independent branch of `cache` (tensors shared: forward only ever concatenates new ones)."""
    new = KVCache(len(cache.layers))
    for mine, theirs in zip(new.layers, cache.layers):
        mine.k, mine.v = theirs.k, theirs.v
    new.positions, new.mask = cache.positions, cache.mask
    return new
