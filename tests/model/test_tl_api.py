"""TransformerLens' everyday API on interp's model, checked against TransformerLens itself: a tiny random
`transformers` twin is loaded by interp and wrapped by TL's TransformerBridge (unprocessed weights on both),
and TL's own config fields, cache helpers, FactoredMatrix circuits and biases must agree."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformer_lens import ActivationCache as TLActivationCache, FactoredMatrix
from transformer_lens.config import TransformerLensConfig
from transformer_lens.model_protocol import TransformerLensModelWithWeights

from interp.model.load import load_model
from tests.model.families_twins import build_twin, prompt, word_tokenizer
from tests.tiny import TINY, tiny_char_model, tiny_model

CLOSE = dict(atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module", params=["llama", "gpt2", "gemma3"])
def pair(request, tmp_path_factory):
    """(interp model, TransformerBridge) over the same random weights."""
    from transformers import AutoTokenizer

    from interp.model.reference import bridge_from_hf

    folder = tmp_path_factory.mktemp(request.param)
    hf = build_twin(request.param, folder)
    word_tokenizer().save_pretrained(folder)  # the bridge reloads its tokenizer by name
    ours = load_model(str(folder))
    ours.tokenizer = word_tokenizer()
    bridge = bridge_from_hf(hf, AutoTokenizer.from_pretrained(folder), request.param)
    return request.param, ours, bridge


@pytest.fixture(scope="module")
def caches(pair):
    family, ours, bridge = pair
    tokens = prompt(batch=2, length=9)
    with torch.no_grad():
        _, mine = ours.run_with_cache(tokens)
        _, theirs = bridge.run_with_cache(tokens)
    return family, ours, bridge, tokens, mine, theirs


# -- the config -------------------------------------------------------------------------------------------
# Not compared: default_prepend_bos / tokenizer_prepends_bos (the bridge always adds BOS; interp follows the
# tokenizer, a difference the guide states), final_rms (TL sets it inconsistently across adapters; it only
# matters for LayerNorm models, where both say False) and use_normalization_before_and_after (the bridge leaves
# it False on Gemma-3; interp says True, as HookedTransformer's Gemma config does).
TL_FIELDS = ("d_model", "d_head", "n_layers", "n_ctx", "n_heads", "d_mlp", "d_vocab", "d_vocab_out", "device",
             "dtype", "n_key_value_heads", "normalization_type", "positional_embedding_type", "uses_rms_norm",
             "gated_mlp", "attn_only", "parallel_attn_mlp", "use_attn_result", "use_split_qkv_input")


def test_cfg_is_a_transformer_lens_config_with_tl_values(pair):
    family, ours, bridge = pair
    assert isinstance(ours.cfg, TransformerLensConfig)
    assert isinstance(ours, TransformerLensModelWithWeights)
    for name in TL_FIELDS:
        assert getattr(ours.cfg, name) == getattr(bridge.cfg, name), name
    assert ours.cfg.eps == pytest.approx(bridge.cfg.eps)
    # the same function under TL's two names for the tanh GELU (gelu_new / gelu_pytorch_tanh)
    assert ours.cfg.act_fn.replace("gelu_pytorch_tanh", "gelu_new") == bridge.cfg.act_fn.replace(
        "gelu_pytorch_tanh", "gelu_new")


def test_cfg_keeps_interp_fields_and_stays_read_only():
    model = tiny_model("llama")
    cfg = model.cfg
    assert cfg.config == TINY["llama"] and cfg == TINY["llama"] and hash(cfg) == hash(TINY["llama"])
    assert (cfg.n_kv_heads, cfg.group_size, cfg.norm, cfg.name) == (2, 2, "rms", "tiny-llama")
    assert cfg.to_dict() == TINY["llama"].to_dict()  # fingerprints and saved configs do not move
    assert cfg.replace(name="other").name == "other" and cfg.name == "tiny-llama"
    with pytest.raises(dataclasses.FrozenInstanceError, match="read-only"):
        cfg.n_layers = 3
    with pytest.raises(dataclasses.FrozenInstanceError, match="names_filter"):
        cfg.use_attn_result = True
    assert type(model)(cfg).cfg == cfg  # a model built from another's cfg gets the same config
    model.to(torch.float64)
    assert cfg.dtype == torch.float64 and cfg.device == "cpu"  # live: follows .to(...)
    copy = __import__("copy").deepcopy(model)  # a copy's config follows the copy, not the original
    model.to(torch.float32)
    assert copy.cfg.dtype == torch.float64 and model.cfg.dtype == torch.float32 and copy.cfg == cfg


def test_default_prepend_bos_is_settable_as_in_tl():
    """TL's idiom `model.cfg.default_prepend_bos = ...` chooses the BOS rule; the ModelConfig follows."""
    model = tiny_char_model()
    model.cfg = model.cfg.replace(bos_token_id=0, default_prepend_bos=False)
    assert model.encode("ab") == [model.to_single_token("a"), model.to_single_token("b")]
    model.cfg.default_prepend_bos = True
    assert model.cfg.config.default_prepend_bos is True and model.encode("ab")[0] == 0


def test_cfg_rms_vs_layer_norm_and_positions():
    rms, ln = tiny_model("llama").cfg, tiny_model("gpt2").cfg
    assert (rms.normalization_type, rms.positional_embedding_type, rms.n_key_value_heads) == ("RMS", "rotary", 2)
    assert (ln.normalization_type, ln.positional_embedding_type, ln.n_key_value_heads) == ("LN", "standard", None)
    assert (rms.act_fn, ln.act_fn) == ("silu", "gelu_new")


# -- the cache helpers ------------------------------------------------------------------------------------
def test_cache_is_tl_and_hooks_match_the_bridge(caches):
    family, ours, bridge, tokens, mine, theirs = caches
    assert isinstance(mine, TLActivationCache)
    for key in (("resid_post", -1), ("embed",), ("scale", 1, "ln1"), ("scale",), ("pattern", 0, "attn"),
                ("z", 1), ("resid_mid", 0), ("normalized", 1, "ln2")):
        got = mine[key if len(key) > 1 else key[0]]
        torch.testing.assert_close(got, theirs[key if len(key) > 1 else key[0]], **CLOSE, msg=str(key))


@pytest.mark.parametrize("apply_ln", [False, True])
def test_decompose_and_accumulate_resid_give_tls_numbers(caches, apply_ln):
    family, ours, bridge, tokens, mine, theirs = caches
    got, labels = mine.decompose_resid(apply_ln=apply_ln, return_labels=True)
    want, want_labels = theirs.decompose_resid(apply_ln=apply_ln, return_labels=True)
    assert labels == want_labels
    torch.testing.assert_close(got, want, **CLOSE)
    got, labels = mine.accumulated_resid(incl_mid=True, apply_ln=apply_ln, return_labels=True)
    want, want_labels = theirs.accumulated_resid(incl_mid=True, apply_ln=apply_ln, return_labels=True)
    assert labels == want_labels
    torch.testing.assert_close(got, want, **CLOSE)
    if not apply_ln:  # the components add up to the final residual stream
        torch.testing.assert_close(mine.decompose_resid().sum(0), mine["resid_post", -1], **CLOSE)


def test_stack_head_results_and_logit_attrs_give_tls_numbers(caches):
    family, ours, bridge, tokens, mine, theirs = caches
    got = mine.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)
    want = theirs.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)
    torch.testing.assert_close(got, want, **CLOSE)
    answer, wrong = tokens[:, -1], tokens[:, 0]
    stack = mine.decompose_resid(pos_slice=-1)
    got = mine.logit_attrs(stack, answer, incorrect_tokens=wrong, pos_slice=-1)
    want = theirs.logit_attrs(theirs.decompose_resid(pos_slice=-1), answer, incorrect_tokens=wrong, pos_slice=-1)
    torch.testing.assert_close(got, want, **CLOSE)
    if family != "gemma3":  # without post-norms the heads add up to attn_out less b_O
        heads = mine.stack_head_results(layer=1, incl_remainder=False).sum(0)
        torch.testing.assert_close(heads + ours.b_O[0], mine["attn_out", 0], **CLOSE)


def test_apply_ln_to_stack_and_remove_batch_dim(caches):
    family, ours, bridge, tokens, mine, theirs = caches
    stack = mine.accumulated_resid(layer=2)
    torch.testing.assert_close(mine.apply_ln_to_stack(stack, layer=2), theirs.apply_ln_to_stack(stack, layer=2),
                               **CLOSE)
    _, single = ours.run_with_cache(tokens[:1])
    assert single.remove_batch_dim() is single and single["resid_pre", 0].shape == tokens[:1].shape[1:] + (
        ours.cfg.d_model,)
    _, batchless = ours.run_with_cache(tokens[:1], remove_batch_dim=True)  # TL's option: the cache knows
    assert not batchless.has_batch_dim
    torch.testing.assert_close(batchless["resid_pre", 1], single["resid_pre", 1])


# -- weights, biases and circuits ----------------------------------------------------------------------------
def test_biases_and_weights_match_the_bridge(pair):
    family, ours, bridge = pair
    params = bridge.tl_parameters()
    for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "b_in", "b_out", "W_in", "W_out", "W_U"):
        try:
            theirs = getattr(bridge, name)
        except AttributeError:  # the bridge refuses stacked biases a family lacks; its parameters hold zeros
            where = "attn" if name[-1] in "QKVO" else "mlp"
            theirs = torch.stack([params[f"blocks.{layer}.{where}.{name}"] for layer in range(ours.cfg.n_layers)])
            assert torch.count_nonzero(theirs) == 0
        if name in ("W_K", "W_V", "b_K", "b_V"):
            # the bridge's stacked W_K / b_K keep one slice per key/value head; its tl_parameters(), QK / OV and
            # HookedTransformer repeat them per query head, as interp does
            theirs = theirs.repeat_interleave(ours.cfg.n_heads // theirs.shape[1], dim=1)
        torch.testing.assert_close(getattr(ours, name), theirs, msg=name)
    assert torch.count_nonzero(ours.b_U) == 0 and ours.b_U.shape == (ours.cfg.d_vocab,)
    offset = float(getattr(bridge.cfg, "rmsnorm_uses_offset", False))  # Gemma's bridge stores w, interp 1 + w
    shared = [name for name in ours.tl_parameters() if name in params]
    assert len(shared) >= 10 * ours.cfg.n_layers
    for name in shared:
        want = params[name] + offset if name.endswith(".w") else params[name]
        torch.testing.assert_close(ours.tl_parameters()[name], want, msg=name)


def test_ov_and_qk_are_tls_factored_matrices(pair):
    family, ours, bridge = pair
    n, h, d = ours.cfg.n_layers, ours.cfg.n_heads, ours.cfg.d_model
    for name in ("OV", "QK"):
        got, want = getattr(ours, name), getattr(bridge, name)
        assert isinstance(got, FactoredMatrix) and got.shape == (n, h, d, d)
        torch.testing.assert_close(got.AB, want.AB, **CLOSE)
    # query head h reads key/value head h // group_size
    layer, head = n - 1, h - 1
    v_head = ours.blocks[layer].attn._W_V[head // ours.cfg.group_size] if hasattr(
        ours.blocks[layer].attn, "_W_V") else ours.W_V[layer, head]
    torch.testing.assert_close(ours.OV[layer, head].AB, v_head @ ours.W_O[layer, head])


def test_residual_directions_token_position_and_accumulated_bias(pair):
    family, ours, bridge = pair
    ids = torch.tensor([[5, 9], [11, 5]])
    torch.testing.assert_close(ours.tokens_to_residual_directions(ids), bridge.tokens_to_residual_directions(ids))
    torch.testing.assert_close(ours.tokens_to_residual_directions("paris"), ours.W_U[:, ours.to_single_token("paris")])
    assert ours.get_token_position(5, ids[1]) == 1 and ours.get_token_position(5, torch.tensor([5, 3, 5]), "last") == 2
    text = "the eiffel tower is in paris"
    assert ours.get_token_position("paris", text, prepend_bos=False) == 5
    for layer, mlp_input in ((0, True), (2, False), (3, False)):
        torch.testing.assert_close(ours.accumulated_bias(layer, mlp_input), bridge.accumulated_bias(layer, mlp_input),
                                   msg=f"{layer} {mlp_input}")


def test_logit_lens_gives_tls_numbers(caches):
    family, ours, bridge, tokens, mine, theirs = caches
    got, want = mine.logit_lens(), theirs.logit_lens()
    assert got.labels == want.labels and got.labels[-1] == "final_post"
    torch.testing.assert_close(got.values, want.values, **CLOSE)
    with torch.no_grad():
        torch.testing.assert_close(got.values[-1], ours(tokens)[:, -1], **CLOSE)  # the last entry: the output


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_tl_attribution_recipe_needs_tls_weight_processing(family, tmp_path):
    """`decompose_resid(apply_ln=True) @ W_U + b_U` adds up to the logits only on TL-processed weights (the
    final norm's weight folded into W_U); on the checkpoint's weights it does not, and cfg says which."""
    build_twin(family, tmp_path)
    tokens = prompt(batch=1, length=7)
    gaps = {}
    for processed in (False, True):
        model = load_model(str(tmp_path), process_weights=processed)
        assert model.cfg.layer_norm_folding is processed
        assert model.cfg.normalization_type == ("RMS" if family == "llama" else "LN") + ("Pre" if processed else "")
        with torch.no_grad():
            logits, cache = model.run_with_cache(tokens)
        stack = cache.decompose_resid(apply_ln=True, pos_slice=-1)  # (component, batch, d_model)
        dla = stack.sum(0) @ model.W_U + model.b_U
        gaps[processed] = float((dla - logits[:, -1]).abs().max().detach())
    assert gaps[True] < 1e-3 < gaps[False]
