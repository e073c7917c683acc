"""The circuit tools on SmolLM2: the induction heads' keys are fed by a previous-token head, found by path
patching against a control of every other sender; attribution patching ranks cells as activation patching
does, above chance."""

from __future__ import annotations

import pytest
import torch

from interp.patching import logit_diff
from interp.patching.compare import compare_methods
from interp.patching.induction import induction_paths

pytestmark = pytest.mark.slow


def test_path_patching_finds_the_heads_feeding_the_induction_keys(smollm2):
    """SmolLM2's top induction heads (L18H6, L17H4, L17H3: tests/analysis/induction) read keys written by
    an earlier head; the top sender must stand far above every other sender's effect (control)."""
    paths = induction_paths(smollm2, [(18, 6), (17, 4), (17, 3)], seq_len=12, n=2, seed=1)
    (top, effect), *_ = paths.ranked()
    mean, std = paths.control(top=5)
    assert effect > 1.0 and effect > mean + 10 * std
    # the sender is a previous-token head: on the repeated sequence it attends to the token before
    tokens = torch.randint(1000, 20000, (1, 30), generator=torch.Generator().manual_seed(0))
    _, cache = smollm2.run_with_cache(tokens, names_filter=[f"blocks.{top[0]}.attn.hook_pattern"])
    pattern = cache[f"blocks.{top[0]}.attn.hook_pattern"][0, top[1]]
    assert pattern.diagonal(-1)[5:].mean() > 0.5


def test_attribution_ranks_like_activation_patching(smollm2):
    tok = smollm2.tokenizer
    clean = smollm2.to_tokens("When Mary and John went to the store, John gave a drink to")
    corrupted = smollm2.to_tokens("When Mary and John went to the store, Mary gave a drink to")
    assert clean.shape == corrupted.shape
    mary = tok(" Mary", add_special_tokens=False)["input_ids"][0]
    john = tok(" John", add_special_tokens=False)["input_ids"][0]
    rows = compare_methods(smollm2, clean, corrupted, logit_diff(mary, john), kinds=("resid", "heads"), shuffles=100)
    for row in rows:
        assert row["spearman"] > row["chance_95"], row
