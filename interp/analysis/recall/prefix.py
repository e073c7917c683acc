"""Shared-prefix KV-cache reuse: run the common start of many prompts once, then only their suffixes.

In a position sweep the prompts of one base example agree token for token up to the first place they
differ: the instruction, then every item before the gold one (distractors keep their order when the
gold item moves). A causal model's keys and values at position t depend only on tokens 0..t, so the
cache of one "trunk" prompt, cut at token s, *is* the cache of any prompt that shares its first s
tokens. `plan_batches` picks a trunk per group and the shared length of each member; `prefix_cache`
lays the trunk's cut caches out as one left-padded `KVCache` for a batch, so the batch's suffixes (also
left-padded) run on top of it. Padding sits in the middle of a row (between its cached prefix and its
suffix); the model takes positions from the mask, so a row's positions and scores are exactly those of
its unpadded prompt.

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
    """Rows (indices into the caller's list) that run together on one trunk."""

    rows: tuple[int, ...]
    trunk: int | None  # index of the trunk prompt, or None when nothing is shared
    shared: tuple[int, ...]  # per row: how many leading tokens come from the trunk's cache


def plan_batches(
    prompts: Sequence[Sequence[int]], groups: Sequence[Sequence[int]], batch_size: int, reuse: bool = True
) -> list[Batch]:
    """Split each group of prompt indices into batches; with `reuse`, give each group a trunk.

    The trunk is the member sharing the most tokens with the others. Every row keeps at least its
    last token out of the cache, so the forward always produces that token's logits.
    """
    batches: list[Batch] = []
    for group in groups:
        group = sorted(group, key=lambda i: len(prompts[i]))  # similar lengths pad less
        trunk = None
        if reuse and len(group) > 1:
            totals = {i: sum(common_prefix_len(prompts[i], prompts[j]) for j in group if j != i) for i in group}
            trunk = max(group, key=lambda i: (totals[i], -i))
        for start in range(0, len(group), batch_size):
            rows = tuple(group[start:start + batch_size])
            if trunk is None:
                shared = (0,) * len(rows)
            else:
                shared = tuple(min(common_prefix_len(prompts[i], prompts[trunk]), len(prompts[i]) - 1)
                               for i in rows)
            batches.append(Batch(rows, trunk if any(shared) else None, shared))
    return batches


@torch.no_grad()
def run_trunk(model: Transformer, ids: Sequence[int], length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Keys and values, (1, length, g, d) per layer, of the first `length` tokens of `ids`."""
    cache = KVCache(model.cfg.n_layers)
    tokens = torch.tensor([list(ids[:length])], device=model.device)
    model(tokens, return_type=None, past_kv=cache)
    return [(layer.k, layer.v) for layer in cache.layers]


def prefix_cache(
    model: Transformer, trunk_kv: list[tuple[torch.Tensor, torch.Tensor]] | None, shared: Sequence[int]
) -> KVCache:
    """A batch cache holding, for row i, the trunk's first shared[i] keys/values, left-padded to max(shared)."""
    cache = KVCache(model.cfg.n_layers)
    width = max(shared) if trunk_kv is not None else 0
    if width == 0:
        return cache
    b, dev = len(shared), model.device
    mask = torch.zeros((b, width), dtype=torch.bool, device=dev)
    positions = torch.zeros((b, width), dtype=torch.long, device=dev)
    for row, s in enumerate(shared):
        mask[row, width - s:] = True
        positions[row, width - s:] = torch.arange(s, device=dev)
    for layer, (k, v) in zip(cache.layers, trunk_kv):
        lk = k.new_zeros((b, width, *k.shape[2:]))  # (b, width, g, d)
        lv = v.new_zeros((b, width, *v.shape[2:]))
        for row, s in enumerate(shared):
            if s:
                lk[row, width - s:] = k[0, :s]
                lv[row, width - s:] = v[0, :s]
        layer.k, layer.v = lk, lv
    cache.positions, cache.mask = positions, mask
    return cache


def fork(cache: KVCache) -> KVCache:
    """An independent branch of `cache` (tensors shared: forward only ever concatenates new ones)."""
    new = KVCache(len(cache.layers))
    for mine, theirs in zip(new.layers, cache.layers):
        mine.k, mine.v = theirs.k, theirs.v
    new.positions, new.mask = cache.positions, cache.mask
    return new
