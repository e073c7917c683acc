"""Knowledge neurons: the KV-cached integrated gradients equal the full-forward computation, the
threshold/refinement steps follow the paper, the interventions touch only what they should, and on
SmolLM2 suppressing the found neurons lowers p(true) more than random neurons of the same layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from interp.analysis.facts.neuron_controls import random_like, scale_neurons
from interp.analysis.facts.neurons import (
    Attribution,
    consistent_units,
    fact_prompts,
    integrated_gradients,
    refine_relation,
    relation_templates,
    threshold_units,
)
from interp.analysis.facts.params import NeuronParams
from interp.analysis.facts.records import FactRecord
from interp.analysis.facts.run import run_neurons
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
    scaled = (torch.arange(steps)[:, None] / steps * a).requires_grad_(True)

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


def _answer_prob(model, tokens, answer, layer, scale):
    """p(answer) with hook_post of `layer` at the last token multiplied by `scale`."""
    def hook(act, hook):
        act = act.clone()
        act[:, -1] = act[:, -1] * scale
        return act

    with torch.no_grad(), intervene(model, [(hook_names.mlp_post(layer), hook)]):
        return float(torch.softmax(model(tokens)[0, -1].double(), -1)[answer])


def test_integrated_gradients_are_complete():
    """A layer's attributions sum to p(answer | a) - p(answer | 0), up to the Riemann error: small with many
    steps, and shrinking as the steps grow."""
    model = tiny("llama")
    tokens = torch.tensor([[3, 5, 7, 9, 11, 13]])
    errors = {}
    for steps in (4, 1024):
        attr = integrated_gradients(model, tokens, answer_id=17, steps=steps)
        errors[steps] = [abs(attr[l].sum()
                             - (_answer_prob(model, tokens, 17, l, 1.0) - _answer_prob(model, tokens, 17, l, 0.0)))
                         for l in range(model.cfg.n_layers)]
    gaps = [abs(_answer_prob(model, tokens, 17, l, 1.0) - _answer_prob(model, tokens, 17, l, 0.0))
            for l in range(model.cfg.n_layers)]
    assert min(gaps) > 1e-4  # a real change to attribute
    for layer, gap in enumerate(gaps):
        assert errors[1024][layer] < 0.02 * gap + 1e-7, (layer, errors, gaps)
    assert sum(errors[1024]) < sum(errors[4]) / 30  # the error falls like 1/steps


def _attr(kept, mean=None):
    return Attribution([f"p{i}" for i in range(len(kept))], kept,
                       np.arange(20, dtype=float).reshape(2, 10) if mean is None else mean)


def test_threshold_and_refinement_follow_the_reference():
    attr = np.zeros((2, 10))
    attr[0, 1], attr[1, 2], attr[1, 3] = 1.0, 0.2, 0.1
    assert threshold_units(attr, 0.2) == {(0, 1), (1, 2)}  # >= 0.2 x max is kept, 0.1 is not
    assert threshold_units(-attr, 0.2) == set()
    # a unit needs max(p * n, 3) prompts: with 4 prompts at p = 0.7, 2.8 -> 3; with 10 prompts, 7
    kept4 = [{(0, 1), (0, 2)}, {(0, 1), (0, 2)}, {(0, 1)}, {(1, 5)}]
    assert consistent_units(kept4, 0.7, 3) == [(0, 1)]
    assert consistent_units(kept4[:2], 0.5, 3) == []  # two prompts can never reach three
    kept10 = [{(0, 1)}] * 7 + [set()] * 3
    assert consistent_units(kept10, 0.7, 3) == [(0, 1)] and consistent_units(kept10, 0.75, 3) == []
    params = NeuronParams()
    # one relation, two facts: p is shared; mean count 1 at 0.7 goes down until the mean reaches 2
    a = _attr([{(0, 1), (1, 5)}, {(0, 1), (1, 5)}, {(0, 1), (1, 5)}, {(0, 1)}, {(0, 1)}])  # (1,5) in 3/5
    b = _attr([{(0, 3), (0, 4)}] * 3 + [{(0, 3)}] * 2)  # (0,4) in 3/5
    units, history = refine_relation([a, b], params)
    assert [h["p"] for h in history] == [0.7, 0.65, 0.6] and history[-1]["mean_count"] == 2
    assert units == [[(1, 5), (0, 1)], [(0, 4), (0, 3)]]  # sorted by mean attribution
    # nothing consistent anywhere: p stops after max_rounds and the facts keep nothing (no fallback)
    none = _attr([{(0, 1)}, {(0, 2)}, {(0, 3)}])
    units, history = refine_relation([none], params)
    assert units == [[]] and len(history) == params.max_rounds
    assert [h["p"] for h in history] == [0.7, 0.65, 0.6, 0.55, 0.5, 0.45]
    # too many: p goes up and stops in range
    many = _attr([{(1, i) for i in range(8)}] * 7 + [{(1, i) for i in range(3)}] * 3)  # 8 units in 7/10
    units, history = refine_relation([many], params)
    assert len(units[0]) == 3 and [h["p"] for h in history] == [0.7, 0.75]


def test_prompts_are_filled_from_the_relation_templates():
    facts = [_fact(0, "The {} is located in the city of", "Eiffel Tower", "Paris",
                   ["The Eiffel Tower stands in the city of", "The Louvre is near the Eiffel Tower in"], "P131"),
             _fact(1, "The {} is located in the city of", "Colosseum", "Rome",
                   ["Where is the Colosseum? In the city of"], "P131"),
             _fact(2, "The capital of {} is", "Japan", "Tokyo", [], "P36")]
    templates = relation_templates(facts)
    assert templates["P131"] == ["The {} is located in the city of", "The {} stands in the city of",
                                 "The Louvre is near the {} in", "Where is the {}? In the city of"]
    assert fact_prompts(facts[1], templates["P131"], 8) == [
        "The Colosseum is located in the city of", "Where is the Colosseum? In the city of",
        "The Colosseum stands in the city of", "The Louvre is near the Colosseum in"]
    assert len(fact_prompts(facts[1], templates["P131"], 3)) == 3
    assert fact_prompts(facts[2], templates["P36"], 8) == ["The capital of Japan is"]


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
    with pytest.raises(InvalidInputError, match="max_prompts"):
        NeuronParams(min_prompts=4, max_prompts=3)


def _fact(case_id, prompt, subject, target, paraphrases, relation):
    return FactRecord(case_id, prompt, subject, target, "x", relation, paraphrase_prompts=tuple(paraphrases))


SMOL_FACTS = (
    _fact(0, "The {} is located in the city of", "Eiffel Tower", "Paris",
          ["The Eiffel Tower stands in the city of", "The Eiffel Tower can be found in the city of"], "P131"),
    _fact(1, "The capital of {} is", "Japan", "Tokyo", ["Japan's capital city is", "The capital city of Japan is"],
          "P36"),
    _fact(2, "The mother tongue of {} is", "Vladimir Putin", "Russian",
          ["Vladimir Putin's native language is", "The native language of Vladimir Putin is"], "P103"),
)


@pytest.mark.slow
def test_smollm2_suppressing_found_neurons_beats_random(smollm2, tmp_path):
    """Two facts, three prompts each, 10 IG steps, 3 random draws (kept small for speed)."""
    params = NeuronParams(facts=SMOL_FACTS[:2], steps=10, random_seeds=3, n_unrelated=1)
    result = run_neurons(smollm2, params)
    table = result.control_table()
    sup = table[(table.action == "suppress") & table.group.isin(["fact", "paraphrases"])]
    found = sup[sup.neurons == "found"].relative_pct.mean()
    random = sup[sup.neurons == "random"].relative_pct.mean()
    assert found < random - 10, table
    assert any(f.neurons for f in result.facts)
    j = result.to_json()
    assert {"neurons", "suppress", "amplify"} <= set(j) and {"layer", "neuron", "score"} <= set(j["neurons"][0])
    json.dumps(j)
    assert j["n_without_neurons"] == sum(not f.neurons for f in result.facts)
    assert {p.name for p in result.save_figures(tmp_path)} == {"neuron_controls.png", "neuron_layers.png"}
    assert "| suppress | found |" in result.summary_markdown()


def test_neurons_cli_rejects_bad_input(tmp_path):
    from cli.main import cli

    runner = CliRunner()
    r = runner.invoke(cli, ["neurons", "--subject", "Japan"])
    assert r.exit_code != 0 and "together" in str(r.exception)
    r = runner.invoke(cli, ["neurons", "--limit", "3"])
    assert r.exit_code != 0 and "--facts" in str(r.exception)
    r = runner.invoke(cli, ["neurons", "--subject", "Japan", "--prompt", "{} is in", "--paraphrase", "{} x"])
    assert r.exit_code != 0 and "at least 3 prompts" in str(r.exception)
    r = runner.invoke(cli, ["neurons", "--limit", "3"])
    assert r.exit_code != 0 and "--facts" in str(r.exception)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"case_id": 1, "requested_rewrite": {"prompt": "no braces"}}) + "\n")
    r = runner.invoke(cli, ["neurons", "--facts", str(bad)])
    assert r.exit_code != 0 and "line 1" in str(r.exception)
