"""Edit files are checked completely before they touch a weight; apply is all-or-nothing; saving and exporting
never write through a symlink or remove anything interp did not create (issue #15, item 3)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from interp.analysis.rome import Edit, EditRequest, LayerDelta, export_model
from interp.analysis.rome.edit import weight_hash
from interp.errors import EditError
from interp.fingerprint import weights_checksum


def make_edit(model, layers=(0,), scale=0.01) -> Edit:
    gen = torch.Generator().manual_seed(1)
    deltas = []
    for layer in layers:
        w = model.blocks[layer].mlp.w_out
        deltas.append(LayerDelta(layer, scale * torch.randn(w.shape[0], 1, generator=gen),
                                 scale * torch.randn(1, w.shape[1], generator=gen), weight_hash(w)))
    return Edit(model.cfg.name, "rome", deltas, [EditRequest("The {} is in", "Eiffel Tower", "Rome")])


def read(path):
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["interp_edit"]), {k: f.get_tensor(k) for k in f.keys()}


def rewrite(path, meta, tensors, rehash: bool = True):
    """Write a tampered file; `rehash`: recompute the factor hash as a careful forger would."""
    if rehash and "factors_sha256" in meta:
        from interp.analysis.rome.editfile import factors_hash

        meta = {**meta, "factors_sha256": factors_hash(tensors)}
    path.unlink()
    save_file(tensors, str(path), metadata={"interp_edit": json.dumps(meta)})


def _nan(meta, t):
    t["0.left"][0, 0] = float("nan")
    return meta, t


def _one_d(meta, t):
    t["0.right"] = t["0.right"].reshape(-1).contiguous()
    return meta, t


def _missing_tensor(meta, t):
    del t["0.right"]
    return meta, t


def _missing_key(meta, t):
    del meta["model"]
    return meta, t


def _layer_99(meta, t):
    meta["layers"][0]["layer"] = 99
    return meta, t


def _no_requests(meta, t):
    meta["requests"] = []
    return meta, t


def _huge(meta, t):
    t["0.left"] = t["0.left"] * 1e12
    return meta, t


def _wrong_shape(meta, t):
    t["0.left"] = torch.zeros(t["0.left"].shape[0] + 1, 1)
    return meta, t


def _bad_rank(meta, t):
    meta["layers"][0]["rank"] = 3
    return meta, t


def _request_fields(meta, t):
    meta["requests"][0] = {"prompt": 7}
    return meta, t


def _layers_not_list(meta, t):
    meta["layers"] = {"layer": 0}
    return meta, t


TAMPERED = [
    ("NaN factor", _nan, True, "NaN"),
    ("1-D factor", _one_d, True, "2-D"),
    ("missing factor", _missing_tensor, True, "missing"),
    ("missing metadata key", _missing_key, True, "'model'"),
    ("layer 99", _layer_99, True, "layer 99"),
    ("no requests", _no_requests, True, "no requests"),
    ("huge norm", _huge, True, "too large"),
    ("wrong shape", _wrong_shape, True, "W_out is"),
    ("rank in metadata", _bad_rank, True, "rank"),
    ("request without strings", _request_fields, True, "request 0"),
    ("layers not a list", _layers_not_list, True, "'layers'"),
    ("factor changed, hash not", lambda m, t: (m, {**t, "0.left": t["0.left"] * 1.5}), False, "sha256"),
]


@pytest.mark.parametrize("label, tamper, rehash, fragment", TAMPERED, ids=[t[0] for t in TAMPERED])
def test_tampered_edit_file_is_one_sentence_and_the_model_is_unchanged(tmp_path, tiny, label, tamper, rehash, fragment):
    path = make_edit(tiny).save(tmp_path / "e.edit")
    meta, tensors = read(path)
    meta, tensors = tamper(meta, tensors)
    rewrite(path, meta, tensors, rehash)
    before = weights_checksum(tiny)
    with pytest.raises(EditError) as info:
        Edit.load(path, tiny).apply(tiny)
    message = str(info.value)
    assert fragment in message and "\n" not in message, message
    assert weights_checksum(tiny) == before


def test_a_good_file_round_trips_and_applies(tmp_path, tiny):
    edit = make_edit(tiny, layers=(0, 1))
    path = edit.save(tmp_path / "e.edit")
    meta, _ = read(path)
    assert len(meta["factors_sha256"]) == 64
    before = [b.mlp.w_out.clone() for b in tiny.blocks]
    loaded = Edit.load(path, tiny).apply(tiny)
    assert not torch.equal(tiny.blocks[0].mlp.w_out, before[0])
    loaded.undo(tiny)
    assert all(torch.equal(b.mlp.w_out, w) for b, w in zip(tiny.blocks, before))


def test_apply_is_all_or_nothing(tiny):
    """A failure while applying the second layer puts the first back."""
    edit = make_edit(tiny, layers=(0, 1))
    w1 = tiny.blocks[1].mlp.w_out
    edit.deltas[1] = LayerDelta(1, torch.ones(w1.shape[0] + 3, 1), torch.ones(1, w1.shape[1]), weight_hash(w1))
    before = weights_checksum(tiny)
    with pytest.raises((EditError, RuntimeError)):
        edit.apply(tiny, check=False)  # even unchecked: the add fails at layer 1
    assert weights_checksum(tiny) == before
    assert not edit.is_applied


def test_save_never_writes_through_a_symlink(tmp_path, tiny):
    victim = tmp_path / "victim.txt"
    link = tmp_path / "e.edit"
    link.symlink_to(victim)  # dangling: exists() is False, but writing would create the victim
    with pytest.raises(EditError, match="already exists"):
        make_edit(tiny).save(link)
    assert not victim.exists()
    kept = tmp_path / "kept.txt"
    kept.write_text("mine")
    link2 = tmp_path / "f.edit"
    link2.symlink_to(kept)
    with pytest.raises(EditError, match="already exists"):
        make_edit(tiny).save(link2)
    assert kept.read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_export_never_deletes_what_it_did_not_create(tmp_path, tiny):
    mine = tmp_path / "out.partial"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    export_model(tiny, tmp_path / "out")
    assert (mine / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "out" / "model.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.partial"]
    with pytest.raises(EditError, match="already exists"):
        export_model(tiny, tmp_path / "out")
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(EditError, match="already exists"):
        export_model(tiny, dangling)
    assert not (tmp_path / "elsewhere").exists()
