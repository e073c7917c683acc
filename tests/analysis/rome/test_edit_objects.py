"""Edit mechanics on tiny random models: rank one, exact undo, stacking, save/load, export, refusals."""

from __future__ import annotations

import pytest
import torch

from interp.analysis.rome.covariance import model_fingerprint
from interp.analysis.rome.edit import (
    Edit,
    LayerDelta,
    export_model,
    rank_one_factors,
    undo_all,
    update_direction,
    weight_hash,
)
from interp.analysis.rome.evaluate import bootstrap_ci, ngram_entropy
from interp.analysis.rome.key import EditRequest
from interp.errors import EditError
from interp.model.config import ModelConfig
from interp.model.transformer import Transformer

CFG = ModelConfig(name="tiny-llama", architecture="llama", n_layers=2, d_model=32, n_heads=4, n_kv_heads=2,
                  d_head=8, d_mlp=48, d_vocab=64, n_ctx=128, rope_base=10_000.0, act="silu")


def tiny(name: str = "tiny-llama", seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(CFG.replace(name=name)).init_weights(seed, std=0.2).eval()


def random_edit(model, layer: int, seed: int) -> Edit:
    g = torch.Generator().manual_seed(seed)
    w = model.blocks[layer].mlp.w_out
    k = torch.randn(CFG.d_mlp, generator=g)
    keys = torch.randn(500, CFG.d_mlp, generator=g)
    c = keys.T @ keys / 500
    left, right = rank_one_factors(w, k, torch.randn(CFG.d_model, generator=g), c, ridge=1e-3)
    req = EditRequest("The {} is in", f"thing {seed}", "Rome")
    return Edit(model.cfg.name, "rome", [LayerDelta(layer, left, right, weight_hash(w))], [req])


def test_update_is_rank_one_and_maps_key_to_value():
    model = tiny()
    w = model.blocks[1].mlp.w_out.detach().clone()
    g = torch.Generator().manual_seed(1)
    k, delta = torch.randn(CFG.d_mlp, generator=g), torch.randn(CFG.d_model, generator=g)
    keys = torch.randn(400, CFG.d_mlp, generator=g)
    left, right = rank_one_factors(w, k, delta, keys.T @ keys / 400, ridge=1e-3)
    change = left @ right
    s = torch.linalg.svdvals(change.double())  # all but one singular value are float32 rounding noise
    assert s[0] > 0 and (s[1:] / s[0]).max() < 1e-5
    assert torch.linalg.matrix_rank(change).item() == 1
    torch.testing.assert_close((w + change) @ k, w @ k + delta, rtol=1e-4, atol=1e-4)


def test_two_key_direction_hits_both_keys_with_least_disturbance():
    g = torch.Generator().manual_seed(2)
    samples = torch.randn(400, CFG.d_mlp, generator=g)
    c = samples.T @ samples / 400
    k_star, k_bare = torch.randn(CFG.d_mlp, generator=g), torch.randn(CFG.d_mlp, generator=g)
    u = update_direction(torch.stack([k_star, k_bare]), c, ridge=1e-3)
    torch.testing.assert_close(torch.stack([k_star, k_bare]).double() @ u, torch.ones(2, dtype=torch.float64))
    # one key: ROME's closed form C^-1 k* / (k*^T C^-1 k*)
    cr = c.double() + 1e-3 * c.diagonal().mean().double() * torch.eye(CFG.d_mlp, dtype=torch.float64)
    rome = torch.linalg.solve(cr, k_star.double())
    rome = rome / (rome @ k_star.double())
    torch.testing.assert_close(update_direction(k_star, c, ridge=1e-3), rome)
    # a parallel second key adds no constraint: the pseudo-inverse falls back to ROME's direction
    torch.testing.assert_close(update_direction(torch.stack([k_star, k_star]), c, ridge=1e-3), rome)
    # least disturbance: moving u along any direction that keeps both constraints costs more u^T C u
    basis = torch.stack([k_star, k_bare]).double()
    for _ in range(5):
        n = torch.randn(CFG.d_mlp, generator=g).double()
        n = n - basis.T @ torch.linalg.solve(basis @ basis.T, basis @ n)  # now k . n = 0 for both keys
        assert (u + 0.1 * n) @ cr @ (u + 0.1 * n) > u @ cr @ u


def test_undo_restores_every_weight_exactly_after_stacked_edits():
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tokens = torch.randint(0, 64, (2, 7))
    logits0 = model(tokens)
    edits = []
    for i, layer in enumerate([1, 1, 0]):  # two on the same layer: the second is made on the edited weights
        e = random_edit(model, layer, seed=i)
        e.apply(model)
        edits.append(e)
    assert not torch.equal(model(tokens), logits0)
    with pytest.raises(EditError, match="reverse order"):
        edits[0].undo(model)  # layer 1 changed again after it
    undo_all(model, edits)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert torch.equal(model(tokens), logits0)


def test_save_load_reapply_reproduces_logits(tmp_path):
    model = tiny()
    tokens = torch.randint(0, 64, (2, 7))
    e = random_edit(model, 1, seed=3).apply(model)
    edited = model(tokens)
    path = e.save(tmp_path / "a.edit")
    with pytest.raises(EditError, match="already exists"):
        e.save(path)
    e.undo(model)
    loaded = Edit.load(path, model).apply(model)
    assert torch.equal(model(tokens), edited)
    assert loaded.requests[0].subject == "thing 3" and loaded.layers == [1]
    loaded.undo(model)


def test_load_refuses_other_model_and_other_base_weights(tmp_path):
    model = tiny()
    path = random_edit(model, 1, seed=4).save(tmp_path / "b.edit")
    with pytest.raises(EditError, match="made for tiny-llama"):
        Edit.load(path, tiny(name="other-model"))
    changed = tiny(seed=5)  # same name, different weights
    with pytest.raises(EditError, match="differs"):
        Edit.load(path, changed)
    (tmp_path / "junk.edit").write_bytes(b"not an edit")
    with pytest.raises(EditError, match="not an interp edit file"):
        Edit.load(tmp_path / "junk.edit")


def test_export_writes_a_new_folder_that_reloads(tmp_path):
    from interp.model.load import load_model

    model = tiny()
    e = random_edit(model, 0, seed=6).apply(model)
    tokens = torch.randint(0, 64, (1, 5))
    folder = export_model(model, tmp_path / "edited")
    with pytest.raises(EditError, match="already exists"):
        export_model(model, folder)
    assert torch.equal(load_model(str(folder))(tokens), model(tokens))
    e.undo(model)


def test_fingerprint_ignores_w_out_only():
    model = tiny()
    fp = model_fingerprint(model)
    e = random_edit(model, 1, seed=7).apply(model)
    assert model_fingerprint(model) == fp
    e.undo(model)
    assert model_fingerprint(tiny(seed=8)) != fp


def test_request_errors_are_one_sentence():
    with pytest.raises(EditError, match="no '\\{\\}'"):
        EditRequest("The Eiffel Tower is in", "Eiffel Tower", "Rome")
    with pytest.raises(EditError, match="not in the prompt"):
        EditRequest("The tower is in", "Eiffel Tower", "Rome")
    with pytest.raises(EditError, match="target is empty"):
        EditRequest("The {} is in", "Eiffel Tower", "  ")


def test_fluency_and_ci():
    assert ngram_entropy("the the the the the the the the") < ngram_entropy("a quick brown fox jumps over the lazy dog")
    lo, hi = bootstrap_ci([0, 1, 1, 1, 0, 1])
    assert lo <= 4 / 6 <= hi
