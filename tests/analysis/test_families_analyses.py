"""The analyses run on any family without family-specific code: on tiny twins of Qwen2 (biased Q/K/V, GQA,
sliding layers) and GPT-NeoX (LayerNorm, parallel residual, partial rotary) loaded through load_model, the
induction scores, a causal trace, a ROME edit (rank one, exact undo), lost-in-the-middle scoring and
activation patching each run and give well-formed answers."""

from __future__ import annotations

import json

import pytest
import torch

from interp.model.load import load_model
from tests.analysis.test_result_protocol import _small_rome, char_tokenizer
from tests.model.families_twins import build_twin


@pytest.fixture(scope="module", params=["qwen2", "gpt_neox"])
def twin(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    build_twin(request.param, folder)
    config = json.loads((folder / "config.json").read_text())  # room for character-level prompts (plain
    (folder / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 1024}))  # RoPE: no change)
    model = load_model(str(folder))
    model.tokenizer = char_tokenizer()  # 81 characters fit the twins' 96-token vocabulary
    return model


def test_induction_scores_every_head(twin):
    from interp.analysis.induction import InductionParams, run_induction

    result = run_induction(twin, InductionParams(batch=2, seq_len=6, top_k=2, seeds=2, text=False, peer=False))
    heads = result.to_json()["heads"]
    assert len(heads) == twin.cfg.n_layers * twin.cfg.n_heads
    assert all(0 <= h["induction_score"] <= 1 for h in heads)


def test_causal_trace_runs(twin):
    from interp.analysis.facts.params import TraceParams
    from interp.analysis.facts.run import run_trace

    result = run_trace(twin, TraceParams(prompt="The {} is in", subject="Eiffel Tower", samples=2, window=2))
    data = result.to_json()
    assert 0 <= data["p_clean"] <= 1 and "peak" in data


def test_rome_edit_is_rank_one_and_undoes_exactly(twin, tmp_path, monkeypatch):
    import dataclasses

    from interp.analysis.rome import EditParams, run_edit

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    before = {k: v.clone() for k, v in twin.state_dict().items()}
    rome = dataclasses.replace(_small_rome(), steps=10)  # enough steps for v* to move off v0
    # the subject ends within the Qwen2 twin's 5-token window of the last position (character tokens)
    result = run_edit(twin, EditParams("The {} is", "Eiffel Tower", "Rome", undo=False, gen_tokens=3, rome=rome))
    changed = [k for k, v in twin.state_dict().items() if not torch.equal(v, before[k])]
    assert changed == ["blocks.1.mlp.w_out"]
    delta = twin.blocks[1].mlp.w_out.detach() - before["blocks.1.mlp.w_out"]
    assert torch.linalg.matrix_rank(delta.double(), rtol=1e-6) == 1
    assert result.after["p_new"] > result.before["p_new"]
    result.edit.undo(twin)
    assert all(torch.equal(v, before[k]) for k, v in twin.state_dict().items())


def test_lost_in_the_middle_scores(twin):
    from interp.analysis.recall.params import RecallParams
    from interp.analysis.recall.run import run_lost_in_middle

    result = run_lost_in_middle(twin, RecallParams(n_items=(2, 3), positions="2", n_examples=2, max_new_tokens=2,
                                                   n_boot=20))
    curves = result.to_json()["curves"]
    assert curves and all(0 <= c["accuracy"] <= 1 for c in curves)


def test_activation_patching_runs(twin):
    from interp.analysis.patching import PatchParams, run_patch

    result = run_patch(twin, PatchParams(clean="ab cd ab", corrupted="ab ce ab", answer=" c", wrong=" d",
                                         kind="heads", method="both"))
    assert result.results["activation"].scores.shape[:2] == (twin.cfg.n_layers, twin.cfg.n_heads)
    assert result.spearman is not None
