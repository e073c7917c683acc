"""Knowledge neurons: the KV-cached integrated gradients equal the full-forward computation, the
threshold/refinement steps follow the paper, the interventions touch only what they should, and on
SmolLM2 suppressing the found neurons lowers p(true) more than random neurons of the same layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from interp.analysis.facts.neuron_controls import random_like, run_neurons, scale_neurons
from interp.analysis.facts.neurons import NeuronParams, integrated_gradients, refine, threshold_units
from interp.analysis.facts.records import FactRecord
from interp.errors import InvalidInputError
from interp.interventions import capture, intervene
from interp.model import hook_names
from interp.model.transformer import Transformer
from tests.tiny import TINY, tiny_model

def tiny(family: str) -> Transformer:
    return tiny_model(family, std=0.3)


def ig_full_forward(model, tokens, answer, steps, layer) -> np.ndarray:
    """Integrated gradients the plain way: the whole prompt through the whole model for every step."""
    store: dict = {}
    with torch.no_grad(), intervene(model, capture([hook_names.mlp_post(layer)], store)):
        model(tokens)
    a = store[hook_names.mlp_post(layer)][0, -1]
    scaled = (torch.arange(1, steps + 1)[:, None] / steps * a).requires_grad_(True)

    def hook(act, hook):
        act = act.clone()
        act[:, -1] = scaled
        return act

    with torch.enable_grad(), intervene(model, [(hook_names.mlp_post(layer), hook)]):
        prob = torch.softmax(model(tokens.expand(steps, -1))[:, -1], -1)[:, answer]
        (grad,) = torch.autograd.grad(prob.sum(), scaled)
    return (a * grad.mean(0)).numpy()


@pytest.mark.parametrize("family", sorted(TINY))
def test_cached_integrated_gradients_equal_full_forward(family):
    model = tiny(family)
    tokens = torch.tensor([[3, 5, 7, 9, 11, 13]])
    attr = integrated_gradients(model, tokens, answer_id=17, steps=6)
    assert attr.shape == (model.cfg.n_layers, model.cfg.d_mlp) and np.abs(attr).max() > 0
    for layer in range(model.cfg.n_layers):
        np.testing.assert_allclose(attr[layer], ig_full_forward(model, tokens, 17, 6, layer), atol=1e-6)
    # a one-token prompt has no earlier tokens to cache
    one = integrated_gradients(model, tokens[:, :1], answer_id=17, steps=3)
    np.testing.assert_allclose(one[0], ig_full_forward(model, tokens[:, :1], 17, 3, 0), atol=1e-6)


def test_threshold_and_refinement_follow_the_paper():
    attr = np.zeros((2, 10))
    attr[0, 1], attr[1, 2], attr[1, 3] = 1.0, 0.25, 0.1
    assert threshold_units(attr, 0.2) == {(0, 1), (1, 2)}  # 0.1 < 0.2 x 1.0
    assert threshold_units(-attr, 0.2) == set()
    params = NeuronParams()
    mean = np.arange(20, dtype=float).reshape(2, 10)
    # 3 prompts: at p = 0.7 a unit must be in all three
    kept = [{(0, 1), (0, 2), (1, 5)}, {(0, 1), (0, 2), (1, 5)}, {(0, 1), (0, 2), (1, 6)}]
    units, history = refine(kept, mean, params)
    assert units == [(0, 2), (0, 1)] and history == [{"p": 0.7, "count": 2}]
    # only one shared unit: p goes down by 0.05 until 2 of 3 prompts suffice (p <= 2/3)
    kept = [{(0, 1), (1, 5)}, {(0, 1), (1, 5)}, {(0, 1)}]
    units, history = refine(kept, mean, params)
    assert set(units) == {(0, 1), (1, 5)} and [h["p"] for h in history] == [0.7, 0.65]
    # too many shared units at every p: capped at the strongest five
    kept = [{(1, i) for i in range(8)}] * 3
    units, history = refine(kept, mean, params)
    assert units == [(1, 7), (1, 6), (1, 5), (1, 4), (1, 3)] and history[-1]["note"].startswith("capped")
    assert [h["p"] for h in history[:-1]] == [0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]


def test_scaling_hooks_touch_only_the_chosen_units_at_the_last_token():
    model = tiny("llama")
    tokens = torch.tensor([[3, 5, 7, 9]])
    name = hook_names.mlp_post(1)
    base, after = {}, {}
    with torch.no_grad():
        with intervene(model, capture([name], base)):
            model(tokens)
        for factor in (0.0, 2.0):
            with intervene(model, scale_neurons([(1, 4), (1, 9)], factor), capture([name], after)):
                model(tokens)
            expect = base[name].clone()
            expect[:, -1, [4, 9]] *= factor
            assert torch.equal(after[name], expect)
    assert not model._forward_hooks and all(not m._forward_hooks for m in model.modules())


def test_random_control_units_come_from_the_same_layers():
    found = [(3, 10), (3, 11), (7, 2)]
    a, b = random_like(found, 48, seed=1), random_like(found, 48, seed=1)
    assert a == b and [l for l, _ in a] == [3, 3, 7] and not set(a) & set(found) and len(set(a)) == 3
    assert random_like(found, 48, seed=2) != a


def test_params_validation():
    with pytest.raises(InvalidInputError, match="steps"):
        NeuronParams(steps=0)
    with pytest.raises(InvalidInputError, match="threshold"):
        NeuronParams(threshold=1.5)


def _fact(case_id, prompt, subject, target, paraphrases, relation):
    return FactRecord(case_id, prompt, subject, target, "x", relation, paraphrase_prompts=tuple(paraphrases))


SMOL_FACTS = (
    _fact(0, "The {} is located in the city of", "Eiffel Tower", "Paris",
          ["The Eiffel Tower stands in the city of"], "P131"),
    _fact(1, "The capital of {} is", "Japan", "Tokyo", ["Japan's capital city is"], "P36"),
    _fact(2, "The mother tongue of {} is", "Vladimir Putin", "Russian",
          ["Vladimir Putin's native language is"], "P103"),
)


@pytest.mark.slow
def test_smollm2_suppressing_found_neurons_beats_random(smollm2, tmp_path):
    """Two facts, one paraphrase each, 10 IG steps, 3 random draws (kept small for speed). Observed on the
    Eiffel Tower with two paraphrases and 20 steps: found neurons -81 % (fact) / -98 % (paraphrases), random
    neurons of the same layers -0.5 % / -0.3 %."""
    params = NeuronParams(facts=SMOL_FACTS[:2], steps=10, random_seeds=3, n_unrelated=1)
    result = run_neurons(smollm2, params)
    table = result.control_table()
    sup = table[(table.action == "suppress") & table.group.isin(["fact", "paraphrases"])]
    found = sup[sup.neurons == "found"].relative_pct.mean()
    random = sup[sup.neurons == "random"].relative_pct.mean()
    assert found < random - 10, table
    for f in result.facts:
        assert 1 <= len(f.neurons) <= params.max_neurons
    j = result.to_json()
    assert {"neurons", "suppress", "amplify"} <= set(j) and {"layer", "neuron", "score"} <= set(j["neurons"][0])
    json.dumps(j)
    assert {p.name for p in result.save_figures(tmp_path)} == {"neuron_controls.png", "neuron_layers.png"}
    assert "| suppress | found |" in result.summary_markdown()


def test_neurons_cli_rejects_bad_input(tmp_path):
    from cli.main import cli

    runner = CliRunner()
    r = runner.invoke(cli, ["neurons", "--subject", "Japan"])
    assert r.exit_code != 0 and "together" in str(r.exception)
    r = runner.invoke(cli, ["neurons", "--limit", "3"])
    assert r.exit_code != 0 and "--facts" in str(r.exception)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"case_id": 1, "requested_rewrite": {"prompt": "no braces"}}) + "\n")
    r = runner.invoke(cli, ["neurons", "--facts", str(bad)])
    assert r.exit_code != 0 and "line 1" in str(r.exception)
