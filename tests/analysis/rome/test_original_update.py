"""The original ROME update (``ROMEParams.reference()``, ``update="original"``) against the authors' update written
out by hand from their rome_main.py / compute_u.py / compute_v.py (Meng et al. 2022):

    u = C^-1 k*,  k* the mean over the context templates ("{}" included) of the W_out input at the subject's
                  last token (found as len(tokens(prefix + subject)) - 1); compute_u returns u / |u|
    right = (v* - W k_0 - b) / (k_0 . u/|u|),  k_0 the bare prompt's key, v* = target_init + delta with
                  target_init = W k_0 + b (compute_v)
    W' = W + (u/|u|) right^T                  (GPT-2's Conv1D layout; ours is its transpose)

Given the same key statistics C (a ridge is part of how C is estimated, so the comparison uses ridge 0) and the
same optimised delta, our stored rank-one factors must give that W' to 1e-5 of the largest entry of the
update. The keys are recomputed here from run_with_cache, not from interp's subject_keys. The fast test runs 5
requests on tiny random models of two families; the slow one 5 facts of experiments/data/facts.json on
SmolLM2 (the count quoted wherever the original ROME is named: "equal to the authors' update within 1e-5 on 5
facts").
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from interp.analysis.rome import ROMEParams, edit as edit_module, rome_edit
from interp.analysis.rome.key import EditRequest
from interp.model import hook_names

ROOT = Path(__file__).resolve().parents[3]
TOLERANCE = 1e-5  # relative to the largest entry of the authors' update
TINY_REQUESTS = [EditRequest("The {} is in", "Eiffel Tower", "Rome"),
                 EditRequest("{} plays the", "Miles Davis", "guitar"),
                 EditRequest("The capital of {} is", "Japan", "Lima"),
                 EditRequest("{} was made by", "Windows", "Apple"),
                 EditRequest("The language of {} is", "Peru", "Dutch")]
TINY_CONTEXTS = ["{}", "Abc de. {}", "Hello there you. {}", "It rained. {}"]


def random_spd(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4 * d, d, generator=g)
    return x.T @ x / (4 * d)


def authors_update(model, request: EditRequest, contexts: list[str], layer: int, c: torch.Tensor,
                   delta: torch.Tensor) -> torch.Tensor:
    """W' - W (d_model, d_mlp) as the authors' code computes it, in float64."""
    name = hook_names.mlp_post(layer)
    keys = []
    for ctx in contexts:
        text = ctx.replace("{}", request.prompt).replace("{}", request.subject)
        prefix = ctx.replace("{}", request.prompt).split("{}")[0] + request.subject
        index = len(model.encode(prefix)) - 1  # the subject's last token, as repr_tools finds it
        _, cache = model.run_with_cache(torch.tensor([model.encode(text)]), names_filter=[name])
        keys.append(cache[name][0, index].double())
    k_star, k_0 = torch.stack(keys).mean(0), keys[0]  # contexts[0] is the bare "{}"
    u = torch.linalg.solve(c.double(), k_star)
    u = u / u.norm()  # compute_u's return
    right = delta.double() / (k_0 @ u)  # compute_v: (target - cur_output) / dot(cur_input, left_vector)
    return torch.outer(right, u)  # transposed from the Conv1D layout


def check(model, request: EditRequest, contexts: list[str], layer: int, c: torch.Tensor, monkeypatch,
          steps: int = 2) -> float:
    """Our original update's largest deviation from the authors', relative to the update's largest entry."""
    monkeypatch.setattr(edit_module, "second_moment", lambda *a, **k: c)
    monkeypatch.setattr(edit_module, "context_templates", lambda *a, **k: contexts)
    params = ROMEParams.reference(layer=layer, ridge=0.0, steps=steps)  # 2 steps: one update of delta
    edit = rome_edit(model, request, params, apply=False)
    d = edit.deltas[0]
    ours = (d.left.double() @ d.right.double()).cpu()
    want = authors_update(model, request, contexts, layer, c, d.left[:, 0].cpu())
    assert float(want.abs().max()) > 0  # a real update, not two zeros agreeing
    return float((ours - want).abs().max() / want.abs().max())


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_original_update_is_the_authors_on_tiny_models(family, monkeypatch):
    from tests.tiny import CHARS, char_tokenizer, tiny_model

    model = tiny_model(family, d_vocab=len(CHARS) + 1, n_ctx=1024)
    model.tokenizer = char_tokenizer()
    c = random_spd(model.cfg.d_mlp, seed=1)
    for request in TINY_REQUESTS:
        assert check(model, request, TINY_CONTEXTS, 0, c, monkeypatch) < TOLERANCE, request.subject


def test_another_direction_is_not_the_authors(monkeypatch):
    """The check can fail: r-ROME's update (delta at k*, not k_0) differs from the authors' by far more."""
    from tests.tiny import CHARS, char_tokenizer, tiny_model

    model = tiny_model("llama", d_vocab=len(CHARS) + 1, n_ctx=1024)
    model.tokenizer = char_tokenizer()
    c = random_spd(model.cfg.d_mlp, seed=1)
    monkeypatch.setattr(edit_module, "second_moment", lambda *a, **k: c)
    monkeypatch.setattr(edit_module, "context_templates", lambda *a, **k: TINY_CONTEXTS)
    request = TINY_REQUESTS[0]
    edit = rome_edit(model, request, ROMEParams.reference(layer=0, ridge=0.0, steps=3, update="r-rome"), apply=False)
    d = edit.deltas[0]
    want = authors_update(model, request, TINY_CONTEXTS, 0, c, d.left[:, 0].cpu())
    assert float((d.left.double() @ d.right.double() - want).abs().max() / want.abs().max()) > 100 * TOLERANCE


@pytest.mark.slow
def test_original_update_is_the_authors_on_five_smollm2_facts(smollm2, monkeypatch):
    from interp.analysis.facts.records import load_facts
    from interp.analysis.rome.key import context_templates

    facts = load_facts(ROOT / "experiments" / "data" / "facts.json")[:5]
    # the bare prompt and 3 of the model's own sampled templates (cached on disk), to keep the test to seconds
    contexts = context_templates(smollm2)[:4]
    c = random_spd(smollm2.cfg.d_mlp, seed=2)
    for f in facts:
        assert check(smollm2, EditRequest.from_fact(f), contexts, 2, c, monkeypatch, steps=2) < TOLERANCE, f.subject
