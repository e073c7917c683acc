"""Knowledge neurons: the KV-cached integrated gradients equal the full-forward computation (one prompt and
a batch of prompts), integrated gradients find a planted fact neuron that a gradient-only or a random
attribution misses, the threshold/refinement steps follow the paper, p is tuned on the tuning facts and
held-out prompts stay out of the search, the interventions touch only what they should, and on SmolLM2
suppressing the found neurons lowers p(true) more than random neurons of the same layers."""

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
    integrated_gradients_batch,
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
from tests.tiny import TINY, tiny_char_model, tiny_model


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


@pytest.mark.parametrize("family", sorted(TINY))
def test_batched_integrated_gradients_equal_one_prompt_at_a_time(family):
    """Prompts of different lengths, left-padded into one batch, each with its own answer."""
    model = tiny(family)
    lists = [[3, 5, 7, 9, 11, 13], [4, 6, 8], [9, 2, 21, 30, 31, 12, 14, 15], [5, 7]]
    answers = [17, 3, 40, 9]
    batch = integrated_gradients_batch(model, lists, answers, steps=6)
    assert len(batch) == len(lists)
    for attr, ids, answer in zip(batch, lists, answers):
        one = integrated_gradients(model, torch.tensor([ids]), answer, steps=6)
        assert np.abs(one).max() > 0
        np.testing.assert_allclose(attr, one, atol=1e-5)


# A planted fact neuron. Attention and positions are switched off, so the last token's computation depends on
# that token alone. Unit U of layer 0 fires (10) on prompts ending in TRIGGER and is the only unit of its layer
# that writes anything. Unit S of layer 1 suppresses ANSWER unless U has fired, and U switches it off far past
# the point where S saturates at zero (silu-like GELU tail), so at the real activation p(ANSWER) no longer
# responds to U: the gradient there is ~0 and only the path integral from 0 sees U's effect.
U, S, ANSWER, TRIGGER = 77, 5, 41, 9
PLANTED_PROMPTS = [[3, 5, 7, TRIGGER], [12, 30, 2, 8, TRIGGER], [50, 6, TRIGGER], [21, 22, 23, 24, 25, TRIGGER]]


def _mlp_input(model, layer, tokens, hooks=()):
    store: dict = {}
    name = f"blocks.{layer}.ln2.hook_normalized"
    with torch.no_grad(), intervene(model, [*hooks, *capture([name], store)]):
        model(tokens)
    ln = model.blocks[layer].ln2
    return store[name][0, -1] * ln.w + ln.b


def _zero_layer_post(layer):
    def hook(act, hook):
        return torch.zeros_like(act)

    return [(hook_names.mlp_post(layer), hook)]


def planted_model():
    model = tiny_model("gpt2", std=0.3)
    e = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(1))
    e = (e - e.mean()) / (e - e.mean()).norm()
    last = torch.tensor([[TRIGGER]])
    with torch.no_grad():
        model.pos_embed.W_pos.zero_()
        for block in model.blocks:
            block.attn.w_o.zero_()
            block.attn.b_o.zero_()
        m0, m1 = model.blocks[0].mlp, model.blocks[1].mlp
        x = _mlp_input(model, 0, last)
        m0.w_in[U] = 20 * x / x.dot(x)  # pre-activation 10 on TRIGGER
        m0.b_in[U] = -10.0
        m0.w_out.zero_()
        m0.w_out[:, U] = 0.3 * e
        x1, x0 = _mlp_input(model, 1, last), _mlp_input(model, 1, last, _zero_layer_post(0))
        d = x1 - x0
        m1.w_in[S] = -20 * d / d.dot(d)  # pre-activation 3 without U, -17 with it
        m1.b_in[S] = 3.0 + 20 * x0.dot(d) / d.dot(d)
        answer = model.unembed.W_U_rows[ANSWER] - model.unembed.W_U_rows.mean(0)
        answer = answer / answer.norm()
        m1.w_out[:, S] = -10 * answer
        m1.b_out += 15 * answer
    return model


def _gradient_attributions(model, tokens, answer):
    """(activation x gradient, plain gradient) of p(answer) at the real activations: (n_layers, d_mlp) each."""
    acts = {}

    def keep(act, hook):
        act.retain_grad()
        acts[hook.name] = act
        return act

    names = [hook_names.mlp_post(l) for l in range(model.cfg.n_layers)]
    with torch.enable_grad(), intervene(model, [(n, keep) for n in names]):
        torch.softmax(model(tokens)[0, -1], -1)[answer].backward()
    grad = np.stack([acts[n].grad[0, -1].numpy() for n in names])
    act = np.stack([acts[n][0, -1].detach().numpy() for n in names])
    return act * grad, grad


def _rank(attr: np.ndarray, layer: int, unit: int) -> int:
    return int(np.where(np.argsort(-attr.ravel(), kind="stable") == layer * attr.shape[1] + unit)[0][0])


def test_integrated_gradients_find_a_planted_fact_neuron_that_gradients_miss():
    model = planted_model()

    def p_answer(tokens, hooks=()):
        with torch.no_grad(), intervene(model, list(hooks)):
            return float(torch.softmax(model(tokens)[0, -1], -1)[ANSWER])

    tokens = [torch.tensor([ids]) for ids in PLANTED_PROMPTS]
    for t in tokens:  # U alone carries the answer
        assert p_answer(t) > 0.8 and p_answer(t, _zero_layer_post(0)) < 0.01
    ig = integrated_gradients_batch(model, PLANTED_PROMPTS, [ANSWER] * len(PLANTED_PROMPTS), steps=20)
    kept = [threshold_units(a, 0.2) for a in ig]
    assert all(_rank(a, 0, U) == 0 for a in ig)  # integrated gradients: U scores highest in every prompt
    assert consistent_units(kept, 0.7, 3) == [(0, U)]  # and is the fact's only knowledge neuron
    rng = np.random.default_rng(0)
    for t, a in zip(tokens, ig):
        act_grad, grad = _gradient_attributions(model, t, ANSWER)
        random_attr = rng.normal(size=a.shape)
        # gradient-only attributions at the real activation miss U (saturated), as does a random one
        for wrong in (act_grad, grad, random_attr):
            assert _rank(wrong, 0, U) > 10
        for wrong in (act_grad, grad):
            assert (0, U) not in threshold_units(wrong, 0.2)


def _tiny_fact(case_id, subject, target, relation, prompt="{} lives in"):
    return FactRecord(case_id, prompt, subject, target, "x", relation,
                      paraphrase_prompts=(f"{subject} is from", f"Where is {subject}? In", f"{subject} works in",
                                          f"{subject}, born in"))


def test_p_is_tuned_on_the_tuning_facts_and_held_out_prompts_stay_out_of_the_search():
    from interp.analysis.facts.run import relation_sample

    names = ["Ann", "Bob", "Cy", "Di", "Ed", "Flo"]
    test = tuple(_tiny_fact(i, n, "Rome", "R1" if i % 2 else "R2") for i, n in enumerate(names))
    tune = tuple(_tiny_fact(10 + i, n + "x", "Oslo", "R1" if i % 2 else "R2") for i, n in enumerate(names[:4]))
    params = NeuronParams(facts=test, tune_facts=tune, relations=("R1", "R2"), per_relation=2, tune_per_relation=2,
                          max_prompts=5, heldout=2, steps=2, random_seeds=1, n_unrelated=1)
    drawn = relation_sample(test, params, 2)
    assert [f.relation_id for f in drawn].count("R1") == 2 and drawn == relation_sample(test, params, 2)
    result = run_neurons(tiny_char_model(), params)
    assert len(result.facts) == 4
    for fn in result.facts:
        assert fn.tuned_on == "tune" and len(fn.prompts) == 3 and len(fn.heldout) == 2
        assert not set(fn.prompts) & set(fn.heldout) and fn.prompts[0].endswith("lives in")
        # p comes from the tuning facts' rounds, not from these facts
        assert fn.p == fn.history[-1]["p"]
    held = result.controls[result.controls.group == "heldout"]
    for fn in result.facts:
        if fn.neurons:
            assert set(held[held.case_id == fn.case_id].prompt) == set(fn.heldout)
    table = result.relation_table()
    assert list(table.relation) == ["R2", "R1", "all"] or list(table.relation) == ["R1", "R2", "all"]
    assert "suppress_found_heldout_lo" in table and "amplify_random_selection_pct" in table
    with pytest.raises(InvalidInputError, match="heldout"):
        NeuronParams(max_prompts=4, heldout=2)


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
