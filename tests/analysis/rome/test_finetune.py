"""Fine-tuning baselines (ROME paper's FT and FT-L) on a tiny model: FT-L's change stays inside its L-infinity
bound while unconstrained FT's does not, the loss falls, the model is untouched until the edit is applied,
and the edit is an ordinary Edit (apply, undo bit for bit, save, load)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from interp.analysis.rome.edit import Edit
from interp.analysis.rome.finetune import FTParams, ft_edit
from interp.analysis.rome.key import EditRequest
from interp.errors import InvalidInputError
from tests.tiny import CHARS, char_tokenizer, tiny_model

REQUESTS = [EditRequest("The {} is in", "Eiffel Tower", "Rome")]


def _model():
    m = tiny_model("llama", d_vocab=len(CHARS) + 1, n_ctx=1024, n_layers=4)
    m.tokenizer = char_tokenizer()
    return m


def test_ft_l_respects_its_bound_and_ft_does_not():
    model = _model()
    w0 = model.blocks[1].mlp.w_out.detach().clone()
    eps = 1e-3
    ftl = ft_edit(model, REQUESTS, FTParams(layer=1, lr=1e-2, steps=8, norm_constraint=eps), apply=False)
    assert torch.equal(model.blocks[1].mlp.w_out, w0)  # computed, not applied
    change = ftl.deltas[0].matrix
    assert float(change.abs().max()) <= eps * (1 + 1e-5)
    assert float(change.abs().max()) >= eps * (1 - 1e-3)  # the clamp was reached, so it did bind
    assert ftl.method == "ft-l" and ftl.info["loss_last"] < ftl.info["loss_first"]

    ft = ft_edit(model, REQUESTS, FTParams.ft(layer=1, lr=1e-2, steps=8), apply=False)
    assert ft.method == "ft" and float(ft.deltas[0].matrix.abs().max()) > 2 * eps
    assert ft.info["loss_last"] < ftl.info["loss_last"]  # without the bound it fits the target better


def test_ft_edit_applies_undoes_and_round_trips_a_file(tmp_path):
    model = _model()
    flags = [p.requires_grad for p in model.parameters()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    edit = ft_edit(model, REQUESTS, FTParams(layer=2, lr=1e-2, steps=3))
    assert [p.requires_grad for p in model.parameters()] == flags
    w = model.blocks[2].mlp.w_out.detach()
    torch.testing.assert_close(w, before["blocks.2.mlp.w_out"] + edit.deltas[0].left, rtol=0, atol=0)
    path = edit.save(tmp_path / "ft.edit")
    edit.undo(model)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    loaded = Edit.load(path, model)
    assert loaded.method == "ft-l" and loaded.deltas[0].rank == model.cfg.d_mlp
    loaded.apply(model)
    assert torch.equal(model.blocks[2].mlp.w_out, w)


def test_ft_params_and_requests_are_checked():
    with pytest.raises(InvalidInputError, match="positive"):
        FTParams(norm_constraint=0.0)
    with pytest.raises(InvalidInputError, match="learning rate"):
        FTParams(lr=0)
    assert dataclasses.replace(FTParams(), norm_constraint=None).method == "ft"
    from interp.errors import EditError

    with pytest.raises(EditError, match="Layer 9"):
        ft_edit(_model(), REQUESTS, FTParams(layer=9))


@pytest.mark.parametrize("eps", [None, 1e-3])
def test_reusing_the_layers_below_and_reading_only_target_logits_gives_the_same_change(eps):
    """FTParams.reuse_prefix is speed only: two requests of different lengths (left padding) and targets of
    several tokens, FT and FT-L, give the same change as running the whole model and every logit each step."""
    model = _model()
    requests = REQUESTS + [EditRequest("People say {} is found in", "Big Ben", "Madrid city")]
    base = FTParams(layer=1, lr=1e-2, steps=6, norm_constraint=eps)
    fast = ft_edit(model, requests, base, apply=False)
    slow = ft_edit(model, requests, dataclasses.replace(base, reuse_prefix=False), apply=False)
    change = slow.deltas[0].matrix
    assert float(change.abs().max()) > 1e-3  # the edit moved the weights
    torch.testing.assert_close(fast.deltas[0].matrix, change, rtol=0, atol=1e-6)
    assert fast.info["loss_first"] == pytest.approx(slow.info["loss_first"], rel=1e-5)
    assert fast.info["loss_last"] == pytest.approx(slow.info["loss_last"], rel=1e-4)
