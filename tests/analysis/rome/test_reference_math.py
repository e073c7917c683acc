"""ROME / MEMIT pieces against hand-written versions on tiny random models (fast): the v* loss terms, MEMIT's
least-squares update, the ES/PS/NS directions, the recall log-prob, fluency."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from interp.analysis.rome import ROMEParams
from interp.analysis.rome.key import EditRequest
from interp.analysis.rome.value import optimise_delta, value_loss
from tests.tiny import CHARS, char_tokenizer, tiny_model

REQUEST = EditRequest("The {} is in", "Eiffel Tower", "Rome")
CONTEXTS = ["{}", "Abc de. {}", "Hello there you. {}"]


@pytest.fixture(scope="module", params=["llama", "gemma3"])
def model(request):
    m = tiny_model(request.param, d_vocab=len(CHARS) + 1, n_ctx=1024)
    m.tokenizer = char_tokenizer()  # one token per character: the subject's last token is found by hand
    return m


def _run(model, text: str, module, idx: int, delta: torch.Tensor | None) -> torch.Tensor:
    """Log-probs (p, vocab) of one unpadded prompt, delta added to module's output at position idx."""
    ids = torch.tensor([model.encode(text)])

    def hook(_m, _i, out):
        if delta is None:
            return out
        out = out.clone()
        out[0, idx] += delta
        return out

    h = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            return F.log_softmax(model(ids)[0].float(), -1)
    finally:
        h.remove()


def _hand_loss(model, module, delta, v0, params: ROMEParams, kl_at: str, direction: str, decay: str):
    """The v* loss written out prompt by prompt, from the characters (no padding, no caches)."""
    tgt = model.encode(" " + REQUEST.target_new)
    nlls = []
    for c in CONTEXTS:
        text = c.replace("{}", REQUEST.prompt).replace("{}", REQUEST.subject)
        idx = text.index(REQUEST.subject) + len(REQUEST.subject) - 1
        full = text + " " + REQUEST.target_new[:-1]
        lp = _run(model, full, module, idx, delta)
        n = len(text)
        nlls.append(-np.mean([float(lp[n - 1 + j, t]) for j, t in enumerate(tgt)]))
    kl_text = "Eiffel Tower is a"
    pos = len("Eiffel Tower") - 1 if kl_at == "subject" else len(kl_text) - 1
    p_orig = _run(model, kl_text, module, len("Eiffel Tower") - 1, None)[pos]
    p_edit = _run(model, kl_text, module, len("Eiffel Tower") - 1, delta)[pos]
    a, b = (p_orig, p_edit) if direction == "orig" else (p_edit, p_orig)
    kl = float((a.exp() * (a - b)).sum())
    norm = float(delta.norm())
    dec = params.weight_decay * (norm ** 2 if decay == "squared" else norm) / float(v0.norm()) ** 2
    return float(np.mean(nlls)), kl, dec


@pytest.mark.parametrize("reference,reuse", [(False, True), (True, True), (True, False)])
def test_value_loss_terms_match_a_hand_written_loss(model, reference, reuse):
    layer = 0  # a later layer can reach the KL prompt's last token (layer 1 of 2 could not)
    module = model.blocks[layer].mlp
    params = ROMEParams.reference(reuse_prefix=reuse) if reference else ROMEParams(reuse_prefix=reuse)
    torch.manual_seed(0)
    delta = torch.randn(model.cfg.d_model)
    v0 = torch.randn(model.cfg.d_model)
    got = value_loss(model, REQUEST, CONTEXTS, layer, module, delta, v0, params)
    nll, kl, dec = _hand_loss(model, module, delta, v0, params, params.kl_at, params.kl_direction, params.decay)
    assert got["nll"] == pytest.approx(nll, rel=1e-4, abs=1e-5)
    assert got["kl"] == pytest.approx(kl, rel=1e-3, abs=1e-6)
    assert kl > 1e-4  # delta moves the KL prompt's distribution, so the term is tested, not zero
    assert got["decay"] == pytest.approx(dec, rel=1e-5)
    # without v0 the norm scale is the reference's target_init: the module's output at the bare prompt
    bare = "The Eiffel Tower is in"
    store = {}
    h = module.register_forward_hook(lambda _m, _i, out: store.setdefault("v", out[0, bare.index("Tower") + 4].clone()))
    with torch.no_grad():
        model(torch.tensor([model.encode(bare)]))
    h.remove()
    got0 = value_loss(model, REQUEST, CONTEXTS, layer, module, delta, None, params)
    assert got0["decay"] == pytest.approx(_hand_loss(model, module, delta, store["v"], params, params.kl_at,
                                                     params.kl_direction, params.decay)[2], rel=1e-4)


def test_prefix_cache_gives_the_same_delta(model):
    layer = 0
    kw = dict(steps=4, lr=0.2)
    a = optimise_delta(model, REQUEST, CONTEXTS, layer, model.blocks[layer].mlp, None, ROMEParams(**kw))
    b = optimise_delta(model, REQUEST, CONTEXTS, layer, model.blocks[layer].mlp, None,
                       ROMEParams(reuse_prefix=False, **kw))
    assert a.steps == b.steps == 4
    assert float(a.delta.norm()) > 0.1
    assert torch.allclose(a.delta, b.delta, atol=1e-5)


def test_reference_loop_only_evaluates_its_last_step(model):
    if model.cfg.architecture != "llama":
        pytest.skip("the loop does not depend on the family")
    layer = 0
    p = ROMEParams.reference(steps=3, early_stop_nll=-1.0)
    r = optimise_delta(model, REQUEST, CONTEXTS, layer, model.blocks[layer].mlp, None, p)
    ours = optimise_delta(model, REQUEST, CONTEXTS, layer, model.blocks[layer].mlp, None,
                          ROMEParams(steps=3, early_stop_nll=-1.0))
    assert r.steps == ours.steps == 3
    # the reference's third forward is not followed by an update: its delta is the one after two steps
    two = optimise_delta(model, REQUEST, CONTEXTS, layer, model.blocks[layer].mlp, None,
                         ROMEParams.reference(steps=2, early_stop_nll=-1.0))
    three_updates = optimise_delta(model, REQUEST, CONTEXTS, layer, model.blocks[layer].mlp, None,
                                   ROMEParams.reference(steps=4, early_stop_nll=-1.0))
    assert not torch.allclose(r.delta, three_updates.delta)
    assert not torch.allclose(two.delta, r.delta)


def test_memit_update_maps_keys_to_targets_as_lambda_vanishes():
    from interp.analysis.rome.memit import layer_update

    g = torch.Generator().manual_seed(0)
    d_model, d_mlp, n = 6, 12, 4
    w = torch.randn(d_model, d_mlp, generator=g, dtype=torch.float64)
    keys = torch.randn(n, d_mlp, generator=g, dtype=torch.float64)
    x = torch.randn(50, d_mlp, generator=g, dtype=torch.float64)
    c = x.T @ x / 50
    v = torch.randn(n, d_model, generator=g, dtype=torch.float64)  # what W' should give each key
    left, right = layer_update(keys, v - keys @ w.T, c, 1e-9)
    w2 = w + left @ right
    assert torch.allclose(keys @ w2.T, v, atol=1e-6)  # W' K = V
    left, right = layer_update(keys, v - keys @ w.T, c, 1e9)  # lambda large: W stays put
    assert float((left @ right).abs().max()) < 1e-6


def test_memit_target_through_a_post_norm_is_exact_where_reachable():
    """Gemma's post-FFN norm: the W_out output change through_norm gives moves the norm's output by the wanted
    residual when some input reaches it (dimensions with g = 0 included), and an identity passes it through."""
    from interp.analysis.rome.memit import through_norm
    from interp.model.components.norm import RMSNorm

    g = torch.Generator().manual_seed(0)
    d = 32
    norm = RMSNorm(d, 1e-6)
    with torch.no_grad():
        norm.w.copy_(torch.rand(d, generator=g) * 5)
        norm.w[:3] = 0
    m = torch.randn(5, d, generator=g, dtype=torch.float64) * 0.1
    other = torch.randn(5, d, generator=g, dtype=torch.float64) * 0.3
    with torch.no_grad():
        wanted = norm(other) - norm(m)  # reachable: other's output
        moved = norm(m + through_norm(norm, m, wanted)) - norm(m)
        linear = norm(m + wanted) - norm(m)  # adding the residual before the norm, as the original does
    assert torch.allclose(moved, wanted, atol=1e-10)
    assert float((linear - wanted).norm() / wanted.norm()) > 0.5
    r = torch.randn(5, d, generator=g, dtype=torch.float64)
    assert torch.equal(through_norm(torch.nn.Identity(), m, r), r)


def test_memit_target_through_a_post_norm_is_the_nearest_reachable():
    """An unreachable target (an RMS norm's output has a fixed size): no small move of the input comes closer."""
    from interp.analysis.rome.memit import through_norm
    from interp.model.components.norm import RMSNorm

    g = torch.Generator().manual_seed(1)
    d = 16
    norm = RMSNorm(d, 1e-6)
    with torch.no_grad():
        norm.w.copy_(0.5 + torch.rand(d, generator=g) * 3)
    m = torch.randn(3, d, generator=g, dtype=torch.float64) * 0.2
    r = torch.randn(3, d, generator=g, dtype=torch.float64)
    with torch.no_grad():
        x = m + through_norm(norm, m, r)
        target = norm(m) + r
        best = (norm(x) - target).norm(dim=-1)
        for _ in range(200):
            nudged = x + 1e-3 * torch.randn(x.shape, generator=g, dtype=x.dtype)
            assert bool(((norm(nudged) - target).norm(dim=-1) >= best - 1e-9).all())


def test_scores_directions_on_synthetic_nlls(monkeypatch):
    from interp.analysis.facts.records import FactRecord
    from interp.analysis.rome import evaluate

    fact = FactRecord(1, "The {} is in", "Eiffel Tower", "Paris", "Rome", "P1",
                      paraphrase_prompts=("P1", "P2"), neighborhood_prompts=("N1", "N2", "N3"))
    # NLL per (prompt, target): lower is likelier
    table = {("The Eiffel Tower is in", "Paris"): 2.0, ("The Eiffel Tower is in", "Rome"): 1.0,  # new wins
             ("P1", "Paris"): 1.0, ("P1", "Rome"): 3.0, ("P2", "Paris"): 3.0, ("P2", "Rome"): 1.0,  # 1 of 2
             ("N1", "Paris"): 1.0, ("N1", "Rome"): 2.0, ("N2", "Paris"): 1.0, ("N2", "Rome"): 2.0,
             ("N3", "Paris"): 2.0, ("N3", "Rome"): 1.0}  # neighbours keep the true answer in 2 of 3

    monkeypatch.setattr(evaluate, "target_nll", lambda _m, ps, ts: np.array([table[(p, t)] for p, t in zip(ps, ts)]))
    s = evaluate.fact_scores(None, [fact])[0]
    assert s["efficacy"] == 1.0
    assert s["paraphrase"] == pytest.approx(0.5)
    assert s["neighborhood"] == pytest.approx(2 / 3)
    assert s["p_new"] == pytest.approx(math.exp(-1.0)) and s["p_true"] == pytest.approx(math.exp(-2.0))


def test_target_nll_is_a_plain_forward_of_prompt_and_answer(model):
    from interp.analysis.rome.evaluate import target_nll

    prompts = ["The Eiffel Tower is in", "Hi. Louvre:", "A much longer prompt, padded the least, is here"]
    targets = ["Rome", "Paris", "Berlin x"]
    got = target_nll(model, prompts, targets, batch_size=3)  # one left-padded batch
    for g, p, t in zip(got, prompts, targets):
        ids = model.encode(p + " " + t)
        with torch.no_grad():
            lp = F.log_softmax(model(torch.tensor([ids]))[0].float(), -1)
        n = len(p)  # characters = tokens
        want = -np.mean([float(lp[n - 1 + j, ids[n + j]]) for j in range(len(t) + 1)])
        assert g == pytest.approx(want, rel=1e-4)


def test_fluency_is_the_papers_weighted_ngram_entropy():
    from interp.analysis.rome.evaluate import ngram_entropy

    assert ngram_entropy("a a a a a a") == 0.0  # one bigram, one trigram
    # 4 distinct words: 3 distinct bigrams, 2 distinct trigrams
    want = np.mean([2 / 3 * math.log2(3), 4 / 3 * math.log2(2)])
    assert ngram_entropy("one two three four") == pytest.approx(want)
    assert ngram_entropy("The cat") != ngram_entropy("the cat sat")  # case and length count
