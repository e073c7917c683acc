"""The fused attention path (scaled_dot_product_attention, taken when no hook watches the pattern) computes
what the explicit path computes, for every family, with padding, sliding windows, GQA and a KV cache; the
explicit path is taken exactly when a hook needs the pattern."""

from __future__ import annotations

import pytest
import torch

from interp.model import hook_names as hn
from interp.model.components.attention import Attention
from interp.model.generate import generate
from tests.tiny import TINY, tiny_model


def _explicit_everywhere(model):
    """Attach a no-op hook to every pattern: attention then always writes its pattern out."""
    return [model.hook_dict[hn.pattern(layer)].register_forward_hook(lambda m, i, o: None)
            for layer in range(model.cfg.n_layers)]


def _both(model, *args, **kwargs):
    fused = model(*args, **kwargs)
    handles = _explicit_everywhere(model)
    try:
        explicit = model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return fused, explicit


@pytest.mark.parametrize("family", sorted(TINY))
def test_fused_equals_explicit_with_padding_and_windows(family):
    model = tiny_model(family, n_layers=3)
    tokens = torch.randint(0, 64, (3, 11), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[1, :4] = False  # left padding in one row
    with torch.no_grad():
        for kwargs in ({}, {"attention_mask": mask}):
            fused, explicit = _both(model, tokens, **kwargs)
            real = kwargs.get("attention_mask", mask | True)
            torch.testing.assert_close(fused[real], explicit[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", sorted(TINY))
def test_fused_generation_equals_explicit(family):
    model = tiny_model(family)
    tokens = torch.randint(0, 64, (2, 6), generator=torch.Generator().manual_seed(1))
    fused = generate(model, tokens, max_new_tokens=8, stop_at_eos=False)
    handles = _explicit_everywhere(model)
    try:
        explicit = generate(model, tokens, max_new_tokens=8, stop_at_eos=False)
    finally:
        for h in handles:
            h.remove()
    assert fused.tolist() == explicit.tolist()


def test_the_fused_path_is_taken_only_when_nothing_watches_the_pattern(monkeypatch):
    model = tiny_model("llama")
    calls = {"explicit": 0, "fused": 0}
    for kind in calls:
        original = getattr(Attention, f"_{kind}")

        def counting(self, *a, _kind=kind, _original=original, **k):
            calls[_kind] += 1
            return _original(self, *a, **k)

        monkeypatch.setattr(Attention, f"_{kind}", counting)
    tokens = torch.randint(0, 64, (1, 5))
    model(tokens)
    assert calls == {"explicit": 0, "fused": model.cfg.n_layers}
    model.run_with_cache(tokens, names_filter=[hn.pattern(0)])
    # only the watched layer writes its pattern out; the others stay fused
    assert calls == {"explicit": 1, "fused": 2 * model.cfg.n_layers - 1}
