"""The memory estimates that refuse big requests (`interp.memory.forward_bytes`, behind every command's and the
lab's refusal) against measured peaks (issue 33): each estimate is an upper bound on what the forward it
describes allocates, and at most RATIO times too high, on tiny models of two families and on SmolLM2.

How the peak is measured, and why it is sound on the CPU: torch's own profiler with ``profile_memory=True``.
Every CPU tensor's storage is allocated through c10's CPU allocator, which reports each allocation and free to
the profiler with the running total of what it has handed out (``total_allocated``); the largest total during
the call, less the total before it, is the most tensor memory the call held at once. That is exactly what the
estimate models (activations, scores, logits; the weights are already there). RSS would not do: glibc keeps
freed memory for reuse (`interp.allocator`), so RSS misses reused blocks; tracemalloc sees only Python's
allocator, not torch's. Not seen: scratch that a kernel library allocates with its own malloc (none of the
kernels these forwards use on the CPU keeps more than a few KiB).
"""

from __future__ import annotations

import pytest
import torch

from interp import memory
from interp.model import hook_names

RATIO = 4.0  # "not more than a few times too high"


def peak_bytes(fn) -> int:
    """The most CPU tensor memory `fn` held at once (the allocator's running total, through the profiler)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = []

    def walk(node):
        if node.tag == _EventType.Allocation:
            events.append((node.start_time_ns, node.extra_fields.alloc_size, node.extra_fields.total_allocated))
        for child in node.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    assert events, "the profiler saw no allocation"
    events.sort()
    before = events[0][2] - events[0][1]  # the running total just before the call's first allocation
    return max(total for _, _, total in events) - before


def runs(model, tokens: torch.Tensor) -> dict:
    """Each forward an estimate describes, with the estimate's arguments."""
    patterns = [(hook_names.pattern(layer), lambda t, hook: None) for layer in range(model.cfg.n_layers)]
    return {
        # hooked patterns: the pattern is written out (the induction scores, the attention viewer)
        "hooked": (lambda: model.run_with_hooks(tokens, fwd_hooks=patterns), {}),
        # a plain forward: the fused kernel, one allowance of scores for its scratch
        "plain": (lambda: model(tokens), {"patterns": False}),
        # every activation kept (a cache; what a backward pass holds)
        "cache": (lambda: model.run_with_cache(tokens), {"keep_layers": True}),
    }


def check_estimates(model, sizes) -> list[str]:
    """(kind, batch, tokens, measured, estimate, ratio) of every run, asserting each ratio is in [1, RATIO]."""
    seen = []
    for batch, n in sizes:
        tokens = torch.randint(0, model.cfg.d_vocab, (batch, n), generator=torch.Generator().manual_seed(0))
        for kind, (fn, options) in runs(model, tokens).items():
            with torch.no_grad():
                measured = peak_bytes(fn)
            estimate = memory.forward_bytes(model, batch, n, **options)
            ratio = estimate / measured
            seen.append(f"{kind} {batch}x{n}: measured {measured:,} B, estimate {estimate:,} B ({ratio:.2f}x)")
            assert 1.0 <= ratio <= RATIO, seen[-1]
    return seen


def test_peak_measurement_sees_what_a_call_holds_at_once():
    """The measurement itself: two 4 MB tensors alive together, then one freed before a third: 8 MB, not 12."""
    def fn():
        a = torch.ones(1_000_000)
        b = a * 2
        del a
        c = b + 1
        return c

    assert 8_000_000 <= peak_bytes(fn) < 8_000_000 + 1024  # (+ a few bytes of scalars torch makes on the way)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_estimates_bound_tiny_models(family):
    from tests.tiny import tiny_model

    check_estimates(tiny_model(family), [(1, 16), (4, 64), (8, 128)])


@pytest.mark.slow
def test_estimates_bound_smollm2(smollm2):
    check_estimates(smollm2, [(1, 32), (2, 128)])


@pytest.mark.slow
@pytest.mark.gemma
def test_estimates_bound_gemma3(gemma3):
    check_estimates(gemma3, [(1, 32), (2, 128)])
