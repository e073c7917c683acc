"""Hooks and interventions on tiny random models of every family: names, shapes, exact effects, cleanup."""

from __future__ import annotations

import pytest
import torch

from interp.interventions import (
    ablate_heads,
    add_vector,
    head_means,
    intervene,
    patch_from_cache,
    read_resid,
    set_activation,
)
from interp.model import hook_names as hn
from interp.model.config import ModelConfig
from interp.model.generate import generate
from interp.model.transformer import Transformer

B, P = 2, 9


def _tokens(model, seed=0):
    return torch.randint(0, model.cfg.d_vocab, (B, P), generator=torch.Generator().manual_seed(seed))


def _expected_shapes(cfg: ModelConfig) -> dict[str, tuple]:
    d, h, g, dh, m = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_mlp
    shapes = {hn.HOOK_EMBED: (B, P, d), hn.LN_FINAL: (B, P, d)}
    for layer in range(cfg.n_layers):
        for name in (hn.resid_pre(layer), hn.resid_mid(layer), hn.resid_post(layer), hn.attn_out(layer),
                     hn.mlp_out(layer), hn.ln(layer, "ln1"), hn.ln(layer, "ln2")):
            shapes[name] = (B, P, d)
        shapes[hn.attn(layer, "q")] = (B, P, h, dh)
        shapes[hn.attn(layer, "k")] = (B, P, g, dh)
        shapes[hn.attn(layer, "v")] = (B, P, g, dh)
        shapes[hn.attn(layer, "z")] = (B, P, h, dh)
        shapes[hn.attn(layer, "attn_scores")] = (B, h, P, P)
        shapes[hn.attn(layer, "pattern")] = (B, h, P, P)
        shapes[hn.mlp(layer, "pre")] = (B, P, m)
        shapes[hn.mlp(layer, "post")] = (B, P, m)
        if cfg.positional == "rope":
            shapes[hn.attn(layer, "rot_q")] = (B, P, h, dh)
            shapes[hn.attn(layer, "rot_k")] = (B, P, g, dh)
    return shapes


def _assert_no_hooks(model):
    assert all(not hp.fwd_hooks and not hp._forward_hooks for hp in model.hook_dict.values())


def test_every_documented_hook_exists_and_fires_with_its_shape(tiny):
    expected = _expected_shapes(tiny.cfg)
    _, cache = tiny.run_with_cache(_tokens(tiny))
    missing = set(expected) - set(cache.keys())
    assert not missing, f"hooks that did not fire: {sorted(missing)}"
    for name, shape in expected.items():
        assert tuple(cache[name].shape) == shape, name
    _assert_no_hooks(tiny)


def test_names_filter_keeps_the_cache_small(tiny):
    _, cache = tiny.run_with_cache(_tokens(tiny), names_filter=[hn.resid_pre(1)])
    assert list(cache.keys()) == [hn.resid_pre(1)]


def test_pattern_rows_are_causal_distributions(tiny):
    _, cache = tiny.run_with_cache(_tokens(tiny), names_filter=lambda n: n.endswith("hook_pattern"))
    for pattern in cache.values():
        torch.testing.assert_close(pattern.sum(-1), torch.ones(pattern.shape[:-1]))
        assert pattern.triu(1).abs().max() == 0


def test_patching_the_residual_makes_the_rest_of_the_run_the_source_run(tiny):
    clean, corrupt = _tokens(tiny, 0), _tokens(tiny, 1)
    clean_logits, clean_cache = tiny.run_with_cache(clean)
    with intervene(tiny, patch_from_cache(hn.resid_pre(1), clean_cache)):
        patched = tiny(corrupt)
    if tiny.cfg.positional == "rope":  # nothing but the residual carries token identity after layer 0
        torch.testing.assert_close(patched, clean_logits)
    # patching only the last position changes only the last position's output
    corrupt_logits = tiny(corrupt)
    with intervene(tiny, patch_from_cache(hn.resid_post(tiny.cfg.n_layers - 1), clean_cache, pos=-1)):
        last = tiny(corrupt)
    torch.testing.assert_close(last[:, -1], clean_logits[:, -1])
    torch.testing.assert_close(last[:, :-1], corrupt_logits[:, :-1])
    _assert_no_hooks(tiny)


def test_steering_vector_adds_exactly_to_the_next_layer_input(tiny):
    tokens = _tokens(tiny)
    vec = torch.randn(tiny.cfg.d_model)
    names = [hn.resid_pre(1)]
    _, base = tiny.run_with_cache(tokens, names_filter=names)
    with intervene(tiny, add_vector(hn.resid_post(0), vec, pos=3, scale=2.0)):
        _, steered = tiny.run_with_cache(tokens, names_filter=names)
    diff = steered[names[0]] - base[names[0]]
    torch.testing.assert_close(diff[:, 3], (2.0 * vec).expand(B, -1))
    assert diff[:, [0, 1, 2, 4, 5]].abs().max() == 0


def test_head_ablation_removes_exactly_that_heads_term(tiny):
    layer, head = 0, 1
    tokens = _tokens(tiny)
    names = [hn.z(layer), hn.attn_out(layer)]
    _, base = tiny.run_with_cache(tokens, names_filter=names)
    with intervene(tiny, ablate_heads([(layer, head)])):
        _, abl = tiny.run_with_cache(tokens, names_filter=names)
    attn = tiny.blocks[layer].attn
    head_term = base[hn.z(layer)][:, :, head] @ attn.W_O[head]  # (b, p, d_model)
    if tiny.cfg.sandwich_norm:  # the post-norm is not linear: compare before it
        pre = lambda z: torch.nn.functional.linear(z.flatten(2), attn.w_o)  # noqa: E731
        torch.testing.assert_close(pre(base[hn.z(layer)]) - pre(abl[hn.z(layer)]), head_term, atol=1e-5, rtol=1e-5)
    else:
        torch.testing.assert_close(base[hn.attn_out(layer)] - abl[hn.attn_out(layer)], head_term, atol=1e-5, rtol=1e-5)
    assert abl[hn.z(layer)][:, :, head].abs().max() == 0


def test_mean_ablation_writes_the_mean(tiny):
    tokens = _tokens(tiny)
    means = head_means(tiny, tokens)
    with intervene(tiny, ablate_heads([(1, 2)], mode="mean", means=means)):
        _, c = tiny.run_with_cache(tokens, names_filter=[hn.z(1)])
    torch.testing.assert_close(c[hn.z(1)][:, :, 2], means[1][2].expand(B, P, -1))


def test_set_activation_and_read_resid(tiny):
    tokens = _tokens(tiny)
    value = torch.full((tiny.cfg.d_model,), 0.5)
    with intervene(tiny, set_activation(hn.resid_pre(1), value, pos=[0, 2])):
        got = read_resid(tiny, tokens, layer=1, pos=[0, 2])
    torch.testing.assert_close(got, value.expand(B, 2, -1))
    _assert_no_hooks(tiny)


def test_stop_and_start_at_layer_compose_to_the_full_forward(tiny):
    tokens = _tokens(tiny)
    resid = tiny(tokens, stop_at_layer=1)
    torch.testing.assert_close(tiny(resid, start_at_layer=1), tiny(tokens))


def test_hooks_are_removed_when_the_forward_raises(tiny):
    def boom(x, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with intervene(tiny, [(hn.resid_pre(0), boom)]):
            tiny(_tokens(tiny))
    _assert_no_hooks(tiny)
    with pytest.raises(RuntimeError, match="boom"):
        tiny.run_with_hooks(_tokens(tiny), fwd_hooks=[(hn.mlp_post(0), boom)])
    _assert_no_hooks(tiny)


def test_cached_generation_equals_uncached(tiny):
    tokens = _tokens(tiny)[:, :5]
    fast = generate(tiny, tokens, max_new_tokens=8, stop_at_eos=False)
    slow = generate(tiny, tokens, max_new_tokens=8, stop_at_eos=False, use_cache=False)
    assert torch.equal(fast, slow)
    sampled = [generate(tiny, tokens, max_new_tokens=8, temperature=1.0, top_k=10, top_p=0.9, seed=3, stop_at_eos=False)
               for _ in range(2)]
    assert torch.equal(*sampled)


def test_left_padding_changes_no_score(tiny):
    tokens = _tokens(tiny)[:1]
    pad = torch.zeros((1, 4), dtype=torch.long)
    padded = torch.cat([pad, tokens], 1)
    mask = torch.cat([torch.zeros_like(pad, dtype=torch.bool), torch.ones_like(tokens, dtype=torch.bool)], 1)
    torch.testing.assert_close(tiny(padded, attention_mask=mask)[:, 4:], tiny(tokens), atol=1e-5, rtol=1e-5)


def test_weight_views_share_storage(tiny):
    attn = tiny.blocks[0].attn
    assert attn.W_Q.shape == (tiny.cfg.n_heads, tiny.cfg.d_model, tiny.cfg.d_head)
    assert attn.W_O.shape == (tiny.cfg.n_heads, tiny.cfg.d_head, tiny.cfg.d_model)
    assert tiny.W_out.shape == (tiny.cfg.n_layers, tiny.cfg.d_mlp, tiny.cfg.d_model)
    with torch.no_grad():
        tiny.blocks[0].mlp.W_out[3, 5] = 7.0
    assert tiny.blocks[0].mlp.w_out[5, 3] == 7.0
    if tiny.cfg.tie_embeddings:
        assert tiny.W_U.data_ptr() == tiny.W_E.data_ptr()


def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="n_kv_heads = 4 must divide n_heads = 6"):
        ModelConfig(n_layers=1, d_model=8, n_heads=6, n_kv_heads=4, d_head=2, d_mlp=8, d_vocab=8, n_ctx=8)


def test_input_longer_than_context_is_refused(tiny):
    from interp.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="reads at most"):
        tiny(torch.zeros((1, tiny.cfg.n_ctx + 1), dtype=torch.long))
    with pytest.raises(InvalidInputError, match="max_new_tokens"):
        generate(tiny, _tokens(tiny), max_new_tokens=0)
    assert isinstance(Transformer, type)


def test_split_inputs_and_per_head_results_change_nothing_until_patched(tiny):
    """hook_q/k/v_input and hook_result are computed only when watched (a full cache leaves them out), and
    watching them leaves the output as it was; patching one head's query input changes only that head."""
    tokens = _tokens(tiny)
    cfg = tiny.cfg
    names = [hn.qkv_input(0, "q"), hn.qkv_input(0, "k"), hn.qkv_input(0, "v"), hn.result(1)]
    with torch.no_grad():
        plain = tiny(tokens)
        logits, cache = tiny.run_with_cache(tokens, names_filter=names)
    torch.testing.assert_close(logits, plain, atol=1e-5, rtol=1e-5)
    assert tuple(cache[hn.qkv_input(0, "q")].shape) == (B, P, cfg.n_heads, cfg.d_model)
    assert tuple(cache[hn.qkv_input(0, "k")].shape) == (B, P, cfg.n_kv_heads, cfg.d_model)
    _, full = tiny.run_with_cache(tokens, names_filter=[hn.result(1), hn.attn_out(1)])
    bias = tiny.blocks[1].attn.b_o
    summed = full[hn.result(1)].sum(2) + (0 if bias is None else bias)
    if cfg.sandwich_norm:  # attn_out is the post-norm of the heads' sum
        summed = tiny.blocks[1].ln1_post(summed)
    torch.testing.assert_close(summed, full[hn.attn_out(1)], atol=1e-5, rtol=1e-5)
    _assert_no_hooks(tiny)
    _, everything = tiny.run_with_cache(tokens)
    assert hn.result(1) not in everything.keys() and hn.qkv_input(0, "q") not in everything.keys()

    def zero_head_2_query(act, hook):
        act = act.clone()
        act[:, :, 2] = 0
        return act

    with torch.no_grad():
        with tiny.hooks(fwd_hooks=[(hn.qkv_input(0, "q"), zero_head_2_query)]):
            _, cache2 = tiny.run_with_cache(tokens, names_filter=[hn.z(0)])
        _, cache1 = tiny.run_with_cache(tokens, names_filter=[hn.z(0)])
    moved = (cache2[hn.z(0)] - cache1[hn.z(0)]).abs().amax(dim=(0, 1, 3))  # per head
    assert moved[2] > 1e-4 and torch.all(moved[[h for h in range(cfg.n_heads) if h != 2]] < 1e-5)
