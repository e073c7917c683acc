"""The induction heads are ablated on another batch than the one they were selected on, against 20 random
draws by default, with zero and mean ablation both reported and intervals beside them."""

from __future__ import annotations

import math

import pytest

from interp.analysis.induction.ablation import Ablator, second_repeat_mask
from interp.analysis.induction.params import InductionParams
from interp.analysis.induction.run import run_induction
from interp.analysis.induction.sequences import repeated_random_tokens
from interp.errors import InvalidInputError
from tests.tiny import tiny_char_model


def test_heads_are_ablated_on_a_batch_they_were_not_selected_on():
    model = tiny_char_model()
    params = InductionParams(batch=3, seq_len=8, top_k=2, seeds=4, text=False, peer=False)
    assert params.ablation_batch_seed == params.seed + 1
    result = run_induction(model, params)
    top = [tuple(h) for h in result.top_heads]
    selection = repeated_random_tokens(model, 3, 8, params.seed)
    held = repeated_random_tokens(model, 3, 8, params.ablation_batch_seed)
    assert not (selection == held).all()
    expect = Ablator(model, held).increase(top, "zero", second_repeat_mask(held, 8))
    on_selection = Ablator(model, selection).increase(top, "zero", second_repeat_mask(selection, 8))
    ab = result.ablation_summary()
    assert math.isclose(ab["zero_ablation"]["top_loss_increase"], expect, rel_tol=1e-6)
    assert not math.isclose(expect, on_selection, rel_tol=1e-3)  # the two batches give different numbers
    for mode in ("zero", "mean"):
        block = ab[f"{mode}_ablation"]
        assert block["n_sequences"] == 3 and len(block["top_ci"]) == 2 and len(block["random_ci"]) == 2
    assert ab["seeds"] == 4 and ab["finding_mode"] == "mean"
    assert len(result.ablation_sequences) == 2 * 3
    finding = {f.key: f for f in result.findings()}["ablation_top_loss_increase"]
    assert finding.value == ab["mean_ablation"]["top_loss_increase"] and "zero ablation" in finding.text


def test_defaults_and_a_selection_batch_reused_for_ablation_is_refused():
    assert InductionParams().seeds >= 20
    with pytest.raises(InvalidInputError, match="ablation-seed"):
        InductionParams(seed=3, ablation_seed=3)
    assert InductionParams(seed=3, ablation_seed=7).ablation_batch_seed == 7
