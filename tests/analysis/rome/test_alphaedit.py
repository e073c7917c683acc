"""AlphaEdit (Fang et al. 2025): the projector, the projected update, and on a tiny model: the preserved keys'
outputs W K0 stay where they were, where MEMIT's update moves them."""

from __future__ import annotations

import pytest
import torch

from interp.analysis.rome import MEMITParams, ROMEParams, StatsParams
from interp.analysis.rome.alphaedit import (
    AlphaEditParams,
    AlphaEditState,
    alphaedit_edit,
    null_space_projector,
    projected_update,
)
from interp.analysis.rome.covariance import StatsCache, sample_corpus, second_moment
from interp.analysis.rome.key import EditRequest
from interp.analysis.rome.memit import memit_edit
from interp.errors import InvalidInputError
from interp.interventions import capture, intervene
from interp.model import hook_names
from tests.tiny import CHARS, char_tokenizer, tiny_model

D_MLP, D_MODEL = 48, 32


def _preserved(seed: int = 0, n: int = 200, rank: int = 30) -> torch.Tensor:
    """(n, D_MLP) keys spanning a `rank`-dimensional subspace."""
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    return torch.randn(n, rank, generator=g, dtype=f64) @ torch.randn(rank, D_MLP, generator=g, dtype=f64)


def test_projector_is_the_null_space_of_the_preserved_keys():
    k0 = _preserved()
    c = k0.T @ k0 / len(k0)
    p = null_space_projector(c, threshold=0.0, relative=1e-8)
    torch.testing.assert_close(p @ p, p, atol=1e-10, rtol=0)  # a projector
    assert round(float(p.trace())) == D_MLP - 30  # the whole null space, nothing else
    assert float((k0 @ p).abs().max()) < 1e-8 * float(k0.abs().max())
    # the absolute threshold (the authors'): every direction with a singular value under it
    s = torch.linalg.svdvals(c)
    cut = float(s[10] + s[11]) / 2  # between two singular values, so rounding cannot tie
    assert round(float(null_space_projector(c, cut).trace())) == int((s < cut).sum())


def test_projected_update_keeps_preserved_outputs_and_writes_new_keys():
    k0 = _preserved()
    c = k0.T @ k0 / len(k0)
    p = null_space_projector(c, 0.0, relative=1e-8)
    g = torch.Generator().manual_seed(1)
    k1 = torch.randn(3, D_MLP, generator=g, dtype=torch.float64)  # new keys, off the preserved subspace
    r = torch.randn(3, D_MODEL, generator=g, dtype=torch.float64)
    left, right = projected_update(k1, r, p, torch.zeros_like(p), l2=1e-6)
    change = left @ right  # (d_model, d_mlp)
    assert float((change @ k0.T).norm()) < 1e-8 * float(change.norm() * k0.norm())  # W K0 unchanged
    torch.testing.assert_close(change @ k1.T, r.T, atol=1e-5, rtol=1e-5)  # the new keys get their residuals


def test_written_keys_pull_later_updates_off_them():
    """cache_c: with earlier batches' keys Kp in the solve, a new update moves them less than without."""
    k0 = _preserved(rank=10)
    p = null_space_projector(k0.T @ k0 / len(k0), 0.0, relative=1e-8)
    g = torch.Generator().manual_seed(2)
    kp = torch.randn(4, D_MLP, generator=g, dtype=torch.float64)
    k1 = torch.randn(2, D_MLP, generator=g, dtype=torch.float64)
    r = torch.randn(2, D_MODEL, generator=g, dtype=torch.float64)
    free = projected_update(k1, r, p, torch.zeros_like(p), l2=1.0)
    held = projected_update(k1, r, p, 100 * kp.T @ kp, l2=1.0)
    assert float((held[0] @ held[1] @ kp.T).norm()) < 0.5 * float((free[0] @ free[1] @ kp.T).norm())


def test_params_are_checked():
    with pytest.raises(InvalidInputError, match="threshold"):
        AlphaEditParams(threshold=0)
    with pytest.raises(InvalidInputError, match="threshold"):
        AlphaEditParams(relative_threshold=2.0)
    with pytest.raises(InvalidInputError, match="L2"):
        AlphaEditParams(l2=-1)


def _model():
    m = tiny_model("llama", d_vocab=len(CHARS) + 1, n_ctx=1024, n_layers=4)
    m.tokenizer = char_tokenizer()
    return m


def _corpus_keys(model, layer: int, stats: StatsParams, cache: StatsCache) -> torch.Tensor:
    """The keys C was estimated from: every token of the sampled corpus but each document's first."""
    store: dict = {}
    keys = []
    for doc in sample_corpus(model, stats, cache=cache):
        with intervene(model, capture([hook_names.mlp_post(layer)], store)):
            model(torch.tensor([doc]), stop_at_layer=layer + 1)
        keys.append(store[hook_names.mlp_post(layer)][0, 1:].double())
    return torch.cat(keys)  # (tokens, d_mlp)


def test_alphaedit_leaves_preserved_outputs_where_memit_moves_them(tmp_path):
    """W K0 before and after one batch on a tiny model, K0 the statistics' own keys (C = K0^T K0 / N, full rank
    here) with their null-space part removed, (I - P) K0: what AlphaEdit keeps. AlphaEdit's change ends in P, so
    those outputs stay put to float rounding; MEMIT's least-squares change moves them. On the raw keys K0
    AlphaEdit's disturbance is bounded by what the null space holds of them: ||dW K0|| <= ||dW||_2 ||P K0||."""
    model = _model()
    cache = StatsCache(tmp_path)
    stats = StatsParams(n_tokens=400, sample_len=16)
    memit = MEMITParams(layers=(1, 2), rome=ROMEParams(steps=10, context_lengths=((2, 2),), stats=stats))
    requests = [EditRequest("The {} is in", "Eiffel Tower", "Rome"), EditRequest("The {} is in", "Big Ben", "Oslo")]
    layers, rel = (1, 2), 0.03
    k0 = {l: _corpus_keys(model, l, stats, cache) for l in layers}
    p = {l: null_space_projector(second_moment(model, l, stats, cache=cache), 0.0, rel) for l in layers}
    kept = {l: k0[l] @ (torch.eye(D_MLP, dtype=torch.float64) - p[l]) for l in layers}
    before = {l: model.blocks[l].mlp.w_out.detach().double().clone() for l in layers}

    def change(l):
        return model.blocks[l].mlp.w_out.detach().double() - before[l]

    def moved(l):  # how far the kept keys' outputs moved, relative to the outputs
        return float((change(l) @ kept[l].T).norm() / (before[l] @ kept[l].T).norm())

    state = AlphaEditState()
    edit = alphaedit_edit(model, requests, AlphaEditParams(memit=memit, relative_threshold=rel), state, stats=cache)
    assert edit.method == "alphaedit" and all(v > 0 for v in edit.info["null_dims"].values())
    for l in layers:
        assert float(change(l).norm()) > 1e-2  # it wrote something
        assert moved(l) < 1e-6, moved(l)
        bound = float(torch.linalg.matrix_norm(change(l), 2) * (p[l] @ k0[l].T).norm())
        assert float((change(l) @ k0[l].T).norm()) <= bound * (1 + 1e-6)
        assert float(state.written[l].trace()) > 0  # the batch's keys are remembered for the next batch
    edit.undo(model)

    memit_edit_ = memit_edit(model, requests, memit, stats=cache)
    assert min(moved(l) for l in layers) > 1e-5
    memit_edit_.undo(model)
    assert all(torch.equal(model.blocks[l].mlp.w_out.double(), before[l]) for l in layers)
