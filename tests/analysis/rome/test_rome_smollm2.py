"""ROME on the real SmolLM2: the Eiffel Tower edit, its controls, exact undo, save/load, CLI refusals.

Statistics use the default 4,000 sampled tokens, cached under cache_dir()/stats after the first run.
"""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from interp.analysis.rome import Edit, EditRequest, rome_edit
from interp.analysis.rome.edit import LayerDelta
from interp.model.generate import generate

pytestmark = pytest.mark.slow

EIFFEL = EditRequest("The {} is located in the city of", "Eiffel Tower", "Rome", "Paris")


def greedy(model, text: str) -> str:
    return model.to_string(generate(model, text, max_new_tokens=1, return_text=False)[0])


@pytest.fixture(scope="module")
def eiffel(smollm2, tmp_path_factory):
    """The model with the Eiffel edit applied; yields (model, edit, path of the saved edit, logits)."""
    w = {k: v.clone() for k, v in smollm2.state_dict().items()}
    edit = rome_edit(smollm2, EIFFEL)
    path = edit.save(tmp_path_factory.mktemp("edit") / "eiffel.edit")
    yield smollm2, edit, path, w
    if edit.is_applied:
        edit.undo(smollm2)


def test_edit_rewrites_the_fact_and_spares_a_neighbour(eiffel):
    model, edit, _, _ = eiffel
    assert edit.deltas[0].rank == 1
    assert greedy(model, "The Eiffel Tower is located in the city of") == " Rome"
    # control: another Paris landmark keeps its answer
    assert greedy(model, "The Louvre is located in the city of") == " Paris"
    # generalisation: a paraphrase behind an unrelated sentence
    assert greedy(model, "It was raining all morning. The Eiffel Tower stands in the city of") == " Rome"


def test_undo_is_exact_and_save_load_reproduces_logits(eiffel):
    model, edit, path, original = eiffel
    tokens = model.to_tokens("The Eiffel Tower is located in the city of")
    edited_logits = model(tokens)
    edit.undo(model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, original[k]), k
    assert greedy(model, "The Eiffel Tower is located in the city of") == " Paris"
    loaded = Edit.load(path, model).apply(model)
    assert torch.equal(model(tokens), edited_logits)
    loaded.undo(model)
    edit.apply(model)  # back to the fixture's state


def _run(args):
    from cli.main import cli

    return CliRunner().invoke(cli, args)


def test_cli_refuses_bad_requests(smollm2, tmp_path):
    r = _run(["edit", "--prompt", "The Eiffel Tower is in", "--subject", "Eiffel Tower", "--target", "Rome"])
    assert r.exit_code != 0 and "no '{}'" in str(r.exception)
    r = _run(["edit", "--prompt", "The {} is in", "--subject", "Eiffel Tower", "--target", ""])
    assert r.exit_code != 0 and "target is empty" in str(r.exception)
    r = _run(["edit", "--prompt", "The {} is located in the city of", "--subject", "Eiffel Tower", "--target", "Paris"])
    assert r.exit_code != 0 and "already answers" in str(r.exception)
    delta = LayerDelta(3, torch.ones(640, 1), torch.full((1, 2048), 1e-3), "0" * 64)  # Gemma-3's shapes
    other = Edit("gemma3-270m", "rome", [delta], [EIFFEL]).save(tmp_path / "g.edit")
    r = _run(["edit", "--load", str(other)])
    assert r.exit_code != 0 and "made for gemma3-270m" in str(r.exception)


def test_cli_load_and_undo(eiffel, smollm2):
    model, edit, path, _ = eiffel
    edit.undo(model)  # the CLI loads its own copy of the model; keep ours clean meanwhile
    try:
        r = _run(["edit", "--load", str(path), "--undo", "--json", "--gen-tokens", "3"])
        assert r.exit_code == 0, r.output
        out = json.loads(r.output[r.output.index("{"):])
        assert out["after"]["p_new"] > out["after"]["p_true"] and out["before"]["p_true"] > out["before"]["p_new"]
        assert out["undo"]["weights_restored_exactly"] is True
    finally:
        edit.apply(model)
