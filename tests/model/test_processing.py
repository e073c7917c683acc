"""TransformerLens' weight processing on request (`load_model(..., process_weights=True)`): log-probs unchanged
on every family, the weights and hooks TransformerLens' own `enable_compatibility_mode()` gives on the same
checkpoint, TL's direct-logit-attribution recipe reproducing the logit, the disk untouched, edits still working.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

import pytest
import torch

from interp.errors import EditError, InvalidInputError
from interp.model.load import load_model
from interp.model.processing import UNPROCESSED, Processing, process_weights, processing_of
from tests.model.families_twins import build_twin, prompt, word_tokenizer
from tests.tiny import tiny_model

# one family per norm kind and per processing rule: RMSNorm (llama, qwen3 with Q/K norms, phi3), RMSNorm with
# value biases (qwen2), Gemma's (1 + w) with sandwich post-norms (gemma3) and a final soft-cap (gemma2),
# LayerNorm serial (gpt2) and parallel (gpt_neox), post-norm only (olmo2)
FAMILIES = ["llama", "qwen2", "qwen3", "phi3", "gemma3", "gemma2", "gpt2", "gpt_neox", "olmo2"]


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """family -> (HF model, folder), built on first use."""
    made = {}

    def get(family):
        if family not in made:
            folder = tmp_path_factory.mktemp(family)
            made[family] = (build_twin(family, folder), folder)
        return made[family]

    return get


def _bridge(folder):
    """TL's TransformerBridge on the twin read afresh from its folder (compatibility mode processes the HF
    model it wraps in place), in compatibility mode: TL's weight processing."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp.model.reference import bridge_from_hf

    hf = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    word_tokenizer().save_pretrained(folder / "tokenizer")  # the bridge wants a tokenizer read from disk
    bridge = bridge_from_hf(hf, AutoTokenizer.from_pretrained(folder / "tokenizer"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            bridge.enable_compatibility_mode(disable_warnings=True)
        finally:
            logging.disable(logging.NOTSET)
    return bridge


@pytest.mark.parametrize("family", FAMILIES)
def test_log_probs_unchanged_and_logits_move_by_one_constant(twins, family):
    _, folder = twins(family)
    plain = load_model(str(folder))
    with pytest.warns(UserWarning, match="not folded") if family == "olmo2" else contextlib.nullcontext():
        processed = load_model(str(folder), process_weights=True)
    assert plain.processing == UNPROCESSED and processing_of(plain) == UNPROCESSED
    assert processed.processing.fold_ln == (family != "olmo2")  # TL folds no norm of a post-norm-only model
    assert processed.processing.center_writing_weights == (family in ("gpt2", "gpt_neox"))  # LayerNorm only
    assert processed.processing.center_unembed == (family != "gemma2")  # not under a final soft-cap
    with torch.no_grad():
        before, after = plain(prompt()), processed(prompt())
    torch.testing.assert_close(after.log_softmax(-1), before.log_softmax(-1), rtol=0, atol=2e-5)
    shift = after - before  # centring the unembedding subtracts each position's mean logit, nothing else
    assert float((shift - shift.mean(-1, keepdim=True)).abs().max()) < 2e-5
    if family != "gemma2":
        assert float(after.mean(-1).abs().max()) < 1e-5 and float(before.mean(-1).abs().max()) > 1e-3


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma3", "gemma2", "gpt2", "gpt_neox", "olmo2"])
def test_weights_and_logits_equal_transformer_lens_compatibility_mode(twins, family):
    _, folder = twins(family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # olmo2: "its norms are not folded", tested above
        ours = load_model(str(folder), process_weights=True)
    bridge = _bridge(folder)
    atol = 1e-6
    torch.testing.assert_close(ours.W_U, bridge.W_U, rtol=0, atol=atol)
    b_U = ours.unembed.b_U if ours.unembed.b_U is not None else torch.zeros(ours.cfg.d_vocab)
    torch.testing.assert_close(b_U, bridge.b_U, rtol=0, atol=atol)
    torch.testing.assert_close(ours.W_E, bridge.W_E, rtol=0, atol=atol)
    torch.testing.assert_close(ours.W_Q, bridge.W_Q, rtol=0, atol=atol)
    torch.testing.assert_close(ours.W_in, bridge.W_in, rtol=0, atol=atol)
    torch.testing.assert_close(torch.stack([b.mlp.w_out.T for b in ours.blocks]), bridge.W_out, rtol=0, atol=atol)
    if ours.blocks[0].attn.b_o is not None:  # the bridge has no stacked b_O for bias-free attention
        torch.testing.assert_close(torch.stack([b.attn.b_o for b in ours.blocks]), bridge.b_O, rtol=0, atol=atol)
    with torch.no_grad():
        torch.testing.assert_close(ours(prompt()), bridge(prompt()), rtol=0, atol=3e-5)


def _hooks(cfg) -> list[str]:
    per_layer = ["hook_resid_pre", "hook_resid_post", "hook_attn_out", "hook_mlp_out", "ln1.hook_scale",
                 "ln1.hook_normalized", "ln2.hook_scale", "ln2.hook_normalized", "attn.hook_z", "mlp.hook_post"]
    names = [f"blocks.{layer}.{n}" for layer in range(cfg.n_layers) for n in per_layer]
    return names + ["ln_final.hook_scale", "ln_final.hook_normalized"]


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_hooks_carry_what_transformer_lens_processed_hooks_carry(twins, family):
    """The folded norms are weightless (TL's RMSPre / LNPre): their hook_normalized, and every stream and
    output hook, equal the compatibility-mode bridge's."""
    _, folder = twins(family)
    ours = load_model(str(folder), process_weights=True)
    bridge = _bridge(folder)
    names = _hooks(ours.cfg)
    with torch.no_grad():
        _, mine = ours.run_with_cache(prompt(), names_filter=names)
        _, theirs = bridge.run_with_cache(prompt(), names_filter=lambda n: n in names)
    for name in names:
        torch.testing.assert_close(mine[name], theirs[name], rtol=0, atol=5e-5, msg=name)


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_direct_logit_attribution_recipe_gives_the_logit(twins, family):
    """TL's `resid / cache['ln_final.hook_scale'] @ W_U[:, tok] (+ b_U)`: the logit once processed, and the same
    number as on the bridge; on the checkpoint's weights it misses the final norm's weight."""
    hf, folder = twins(family)
    last, tok = f"blocks.{2}.hook_resid_post", 7
    names = [last, "ln_final.hook_scale"]

    def recipe(W_U, b_U, cache):
        resid = cache[last][0, -1]
        if hf.config.model_type == "gpt2":  # LayerNorm: the stream's mean goes before the scale
            resid = resid - resid.mean()
        return float((resid / cache["ln_final.hook_scale"][0, -1] @ W_U[:, tok] + b_U[tok]).detach())

    for processed in (False, True):
        model = load_model(str(folder), process_weights=processed)
        with torch.no_grad():
            logits, cache = model.run_with_cache(prompt()[:1], names_filter=names)
        b_U = getattr(model.unembed, "b_U", None)
        b_U = torch.zeros(model.cfg.d_vocab) if b_U is None else b_U.detach()
        gap = abs(recipe(model.W_U, b_U, cache) - float(logits[0, -1, tok]))
        assert (gap < 1e-4) if processed else (gap > 1e-2)
    bridge = _bridge(folder)
    with torch.no_grad():
        _, theirs = bridge.run_with_cache(prompt()[:1], names_filter=lambda n: n in names)
    assert recipe(bridge.W_U, bridge.b_U, theirs) == pytest.approx(recipe(model.W_U, b_U, cache), abs=1e-4)


def test_tied_embeddings_are_untied_and_the_folder_is_untouched(twins):
    """SmolLM2-like tied embeddings: W_U gets the final norm's weight, W_E keeps the checkpoint's; loading
    again unprocessed reads the checkpoint's weights (processing never writes anything)."""
    import hashlib

    hf, folder = twins("gemma3")  # Gemma ties its embeddings
    assert hf.config.tie_word_embeddings
    digest = lambda: hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()  # noqa: E731
    before = digest()
    plain, processed = load_model(str(folder)), load_model(str(folder), process_weights=True)
    assert plain.cfg.tie_embeddings and not processed.cfg.tie_embeddings
    assert torch.equal(processed.W_E, plain.W_E)
    assert not torch.allclose(processed.W_U, plain.W_U)
    assert processed.cfg.extra["weight_processing"] == processed.processing.to_dict()
    assert digest() == before
    assert torch.equal(load_model(str(folder)).W_U, plain.W_U)


def test_options_are_tl_names_and_bad_ones_are_refused(twins):
    _, folder = twins("gpt2")
    only_fold = load_model(str(folder), process_weights={"center_writing_weights": False, "center_unembed": False,
                                                         "fold_value_biases": False})
    assert only_fold.processing == Processing(fold_ln=True)
    assert float(only_fold.W_U.detach().mean(1).abs().max()) > 1e-3  # not centred over the vocabulary
    with pytest.raises(InvalidInputError, match="Unknown weight-processing option 'fold'"):
        load_model(str(folder), process_weights={"fold": True})
    with pytest.raises(InvalidInputError, match="refactor_factored_attn_matrices"):
        load_model(str(folder), process_weights={"refactor_factored_attn_matrices": True})
    with pytest.raises(InvalidInputError, match="process_weights must be"):
        load_model(str(folder), process_weights="yes")


def test_processing_twice_warns_and_changes_nothing():
    model = tiny_model("gpt2")
    process_weights(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(UserWarning, match="already processed"):
        again = process_weights(model)
    assert again == model.processing
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_an_exported_processed_model_reloads_processed(tmp_path):
    """A LayerNorm model's processing creates b_U; an export carries it and the config says what it is."""
    from interp.analysis.rome.editfile import export_model

    model = tiny_model("gpt2")
    with torch.no_grad():
        model.ln_final.b.normal_()  # a final-norm bias, so b_U is not zero
    process_weights(model)
    folder = export_model(model, tmp_path / "export")
    again = load_model(str(folder))
    assert again.processing == model.processing
    torch.testing.assert_close(again.unembed.b_U, model.unembed.b_U)
    tokens = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(again(tokens), model(tokens))


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_rome_and_memit_inputs_are_unchanged_so_edits_work(family):
    """ROME/MEMIT read the MLP's keys (hook_post), add a value change at an MLP's output and score log-probs;
    processing changes none of these, so an edit works the same on processed weights. An edit's rank-one
    change to W_out, applied to both models, leaves their log-probs equal (RMSNorm models keep W_out as it
    is, so an edit file made for one applies to the other; centring a LayerNorm model's W_out changes its
    hash, and the edit file then refuses it)."""
    from interp.analysis.rome.edit import Edit, LayerDelta, weight_hash
    from interp.analysis.rome.key import EditRequest

    plain = tiny_model(family)
    processed = tiny_model(family)
    process_weights(processed)
    tokens = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(0))
    keys = [f"blocks.{layer}.mlp.hook_post" for layer in range(plain.cfg.n_layers)]
    with torch.no_grad():
        _, a = plain.run_with_cache(tokens, names_filter=keys)
        _, b = processed.run_with_cache(tokens, names_filter=keys)
    for name in keys:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-5)
    g = torch.Generator().manual_seed(1)
    left, right = torch.randn(plain.cfg.d_model, 1, generator=g), torch.randn(1, plain.cfg.d_mlp, generator=g)
    same_w_out = torch.equal(plain.blocks[1].mlp.w_out, processed.blocks[1].mlp.w_out)
    assert same_w_out == (plain.cfg.norm == "rms")
    base = weight_hash(plain.blocks[1].mlp.w_out)
    made = lambda: Edit(plain.cfg.name, "rome", [LayerDelta(1, left, right, base)],  # noqa: E731
                        [EditRequest("{} is in", "Paris", "Rome")])
    made().apply(plain)
    if same_w_out:
        made().apply(processed)
    else:
        with pytest.raises(EditError):
            made().apply(processed)
        made().apply(processed, check=False)
    with torch.no_grad():
        torch.testing.assert_close(processed(tokens).log_softmax(-1), plain(tokens).log_softmax(-1), rtol=0, atol=2e-5)


@pytest.mark.slow
def test_smollm2_issue_example_gives_the_logit_with_processing(smollm2):
    """Issue #30's row: on the checkpoint's weights `resid / ln_final.hook_scale @ W_U[:, tok]` misses the logit
    by the final norm's weight; processed, it is the logit, and the log-probs are the checkpoint's."""
    processed = load_model("smollm2-135m", process_weights=True)
    text = "The Eiffel Tower is located in the city of"
    last = f"blocks.{smollm2.cfg.n_layers - 1}.hook_resid_post"
    names = [last, "ln_final.hook_scale"]
    out = {}
    for name, model in (("plain", smollm2), ("processed", processed)):
        tokens = model.to_tokens(text, prepend_bos=False)
        with torch.no_grad():
            logits, cache = model.run_with_cache(tokens, names_filter=names)
        tok = int(logits[0, -1].argmax())
        recipe = float((cache[last][0, -1] / cache["ln_final.hook_scale"][0, -1] @ model.W_U[:, tok]).detach())
        out[name] = (recipe, float(logits[0, -1, tok]), logits[0, -1].log_softmax(-1), tok)
    recipe, logit, _, _ = out["plain"]
    assert abs(recipe - logit) > 1.0  # the issue: 6.84 against 12.84 on its prompt
    recipe, logit, logprobs, tok = out["processed"]
    assert recipe == pytest.approx(logit, abs=1e-3)
    assert tok == out["plain"][3]
    torch.testing.assert_close(logprobs, out["plain"][2], rtol=0, atol=1e-4)


@pytest.mark.slow
def test_smollm2_equals_transformer_lens_compatibility_mode(smollm2):
    """SmolLM2 processed against TL's bridge in compatibility mode on transformers' reading of the same file:
    W_U, W_Q, W_in, and the logits. (Gemma-3-270M passes the same check, in ~5 minutes on 2 busy cores, so CI
    checks Gemma-3's processing on its tiny twin only.)"""
    import gc

    from interp.model.reference import bridge_from_hf, hf_from_gguf

    name = "smollm2-135m"
    ours = load_model(name, process_weights=True)
    hf, tokenizer = hf_from_gguf(name)
    bridge = bridge_from_hf(hf, tokenizer, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge.enable_compatibility_mode(disable_warnings=True)
    for attr in ("W_U", "W_Q", "W_in"):
        torch.testing.assert_close(getattr(ours, attr), getattr(bridge, attr), rtol=0, atol=2e-5, msg=attr)
    tokens = ours.to_tokens("The Eiffel Tower is located in the city of", prepend_bos=False)
    with torch.no_grad():
        torch.testing.assert_close(ours(tokens), bridge(tokens), rtol=0, atol=2e-3)
    del hf, bridge
    gc.collect()


def test_inspect_says_which_weights_are_loaded():
    from interp.analysis.inspect import inspect_prompt
    from tests.tiny import tiny_char_model

    model = tiny_char_model()
    before = inspect_prompt(model, "the cat", top_k=2)
    process_weights(model)
    after = inspect_prompt(model, "the cat", top_k=2)
    assert "weights: unprocessed (the checkpoint's weights)" in before.render()
    assert "weights: processed as TransformerLens does (fold_ln, center_unembed, fold_value_biases)" in after.render()
    assert before.to_json()["config"]["weight_processing"] == UNPROCESSED.to_dict()
    assert after.to_json()["config"]["weight_processing"] == model.processing.to_dict()
    assert [t["id"] for t in after.top_next] == [t["id"] for t in before.top_next]  # the same predictions


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_tl_attribution_helpers_reproduce_the_logit_as_on_the_bridge(twins, family):
    """TL's recipe through its own cache helpers: `decompose_resid`, `apply_ln_to_stack`, then `@ W_U[:, tok]`
    (+ b_U): per component the bridge's numbers, and summed the logit, once the weights are processed."""
    _, folder = twins(family)
    ours, bridge, tok = load_model(str(folder), process_weights=True), _bridge(folder), 7
    found = []
    for model in (ours, bridge):
        with torch.no_grad():
            logits, cache = model.run_with_cache(prompt()[:1])
            stack = cache.decompose_resid(layer=-1, pos_slice=-1)  # (component, batch, d_model)
            scaled = cache.apply_ln_to_stack(stack, layer=-1, pos_slice=-1)
            attrs = scaled @ model.W_U[:, tok]  # (component, batch)
        assert float(attrs.sum() + model.b_U[tok].detach()) == pytest.approx(float(logits[0, -1, tok]), abs=1e-4)
        found.append(attrs)
    torch.testing.assert_close(found[0], found[1], rtol=0, atol=1e-4)
    plain = load_model(str(folder))  # the checkpoint's weights: the same recipe misses the norm's weight
    with torch.no_grad():
        logits, cache = plain.run_with_cache(prompt()[:1])
        scaled = cache.apply_ln_to_stack(cache.decompose_resid(layer=-1, pos_slice=-1), layer=-1, pos_slice=-1)
    assert abs(float((scaled @ plain.W_U[:, tok]).sum().detach()) - float(logits[0, -1, tok])) > 1e-2


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_folded_norms_are_weightless_and_the_others_kept(family):
    """After folding, ln1, ln2 and ln_final compute TL's RMSPre / LNPre (scale 1, shift 0); Gemma's post-norms
    and Q/K norms keep the checkpoint's weights, as TL keeps them."""
    from tests.conftest import _tiny_with_random_norms

    model = _tiny_with_random_norms(family)
    kept = {n: p.clone() for n, p in model.named_parameters() if "_post." in n or "q_norm" in n or "k_norm" in n}
    process_weights(model)
    norms = [model.ln_final] + [b.ln1 for b in model.blocks] + [b.ln2 for b in model.blocks]
    assert all(torch.equal(n.w, torch.ones_like(n.w)) for n in norms)
    assert all(torch.equal(n.b, torch.zeros_like(n.b)) for n in norms if hasattr(n, "b"))
    assert len(kept) == (3 * 4 if family == "gemma3" else 0)
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], p) and not torch.equal(p, torch.ones_like(p)) for n, p in kept.items())


@pytest.mark.parametrize("variant", ["reference", "ours"])
@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_rome_edit_on_processed_weights_is_the_checkpoints_edit(family, variant, tmp_path, monkeypatch):
    """ROME end to end (layer 0 of 2, so the value reaches the predictions): on processed weights it finds the
    checkpoint's edit (RMSNorm: the same numbers; LayerNorm: |v0| in its weight decay moves with the centred
    W_out), and the edited models predict alike; for the original ROME (the default) and ours."""
    from interp.analysis.rome import covariance
    from interp.analysis.rome.edit import rome_edit
    from interp.analysis.rome.hparams import ROMEParams, StatsParams
    from interp.analysis.rome.key import EditRequest
    from tests.tiny import CHARS, char_tokenizer

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    g = torch.Generator().manual_seed(0)
    docs = [torch.randint(1, len(CHARS), (12,), generator=g).tolist() for _ in range(40)]
    monkeypatch.setattr(covariance, "sample_corpus", lambda m, p, progress=None, cache=None: docs)
    params = getattr(ROMEParams, variant)(layer=0, steps=8, context_lengths=((3, 2),), stats=StatsParams(n_tokens=300))
    found = []
    for processed in (False, True):
        model = tiny_model(family, d_vocab=len(CHARS) + 1, n_ctx=256)
        model.tokenizer = char_tokenizer()
        if processed:
            process_weights(model)
        edit = rome_edit(model, EditRequest("{} is in", "Paris", "Rome"), params)
        assert edit.info["nll_after"] < edit.info["nll_before"] - 1e-3
        with torch.no_grad():
            found.append((edit.info, model(model.to_tokens("Paris is in", prepend_bos=False)).log_softmax(-1)))
    (plain, before), (processed, after) = found
    tol = 1e-4 if family == "llama" else 1e-2
    assert processed["nll_after"] == pytest.approx(plain["nll_after"], abs=tol)
    # (the original's clamped delta, |delta| ~ 12 here, moves by 0.15 % with the centred v0 on LayerNorm)
    assert processed["delta_norm"] == pytest.approx(plain["delta_norm"], abs=tol, rel=tol / 5)
    torch.testing.assert_close(after, before, rtol=0, atol=tol)
