"""SmolLM2: its induction heads are real, and ablating them hurts copying more than random heads do.

Threshold: a head that attends uniformly over the ~50-100 earlier tokens scores ~0.01-0.02 here; ARENA calls a
head induction-like above 0.4 on this score's scale (mean attention to the induction target), so a strongest
head above 0.4 is far outside what diffuse attention produces. Small batch to stay fast.
"""

from __future__ import annotations

import pytest

from interp.analysis.induction.ablation import Ablator, random_heads_like, second_repeat_mask
from interp.analysis.induction.scores import pattern_scores
from interp.analysis.induction.sequences import repeated_random_tokens

pytestmark = pytest.mark.slow


def test_smollm2_induction_heads_and_ablation(smollm2):
    cfg, L = smollm2.cfg, 24
    toks = repeated_random_tokens(smollm2, 4, L, seed=0)
    ps = pattern_scores(smollm2, toks, L, keep_example=False)
    assert ps.induction.max().item() > 0.4
    assert ps.loss_second < ps.loss_first - 2.0  # in-context copying works on the second repeat

    k = 5
    flat = ps.induction.flatten().topk(k).indices.tolist()
    top = [(i // cfg.n_heads, i % cfg.n_heads) for i in flat]
    ab = Ablator(smollm2, toks)
    mask = second_repeat_mask(toks, L)
    top_inc = ab.increase(top, "zero", mask)
    rand_inc = [ab.increase(random_heads_like(top, cfg.n_layers, cfg.n_heads, seed=s), "zero", mask) for s in range(2)]
    assert top_inc > 0.5
    assert top_inc > 2 * max(rand_inc)
