"""Score functions against slow, obviously correct loops on tiny random models (with GQA and sandwich norms)."""

from __future__ import annotations

import pytest
import torch

from interp.analysis.induction.ablation import Ablator, random_heads_like, second_repeat_mask
from interp.analysis.induction.circuit import copying_scores, direct_logit_copying, k_composition
from interp.analysis.induction.scores import pattern_scores, tl_induction_detection_pattern, tl_mul_score
from interp.analysis.induction.sequences import bigram_continuation_mask, repeated_random_tokens
from interp.model import hook_names
from interp.model.config import ModelConfig
from interp.model.transformer import Transformer

LLAMA = ModelConfig(name="tiny-llama", n_layers=3, d_model=32, n_heads=4, n_kv_heads=2, d_head=8, d_mlp=48,
                    d_vocab=64, n_ctx=128, bos_token_id=0)
GEMMA = ModelConfig(name="tiny-gemma", n_layers=3, d_model=32, n_heads=4, n_kv_heads=1, d_head=16, d_mlp=48,
                    d_vocab=64, n_ctx=128, act="gelu_tanh", qk_norm=True, sandwich_norm=True, embed_scale=32 ** 0.5,
                    attn_scale=16.0, bos_token_id=2)


def make(cfg: ModelConfig, seed: int = 0) -> Transformer:
    model = Transformer(cfg).init_weights(seed, std=0.2)
    with torch.no_grad():  # non-trivial norm weights, so a forgotten fold shows up
        gen = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if name.endswith(".w"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=gen))
    return model.eval()


@pytest.fixture(params=["llama", "gemma"])
def model(request) -> Transformer:
    return make(LLAMA if request.param == "llama" else GEMMA)


def test_repeated_tokens_layout(model):
    L = 10
    toks = repeated_random_tokens(model, 3, L, seed=1)
    assert toks.shape == (3, 1 + 2 * L)
    assert (toks[:, 0] == model.cfg.bos_token_id).all()
    assert torch.equal(toks[:, 1 : L + 1], toks[:, L + 1 :])
    assert (toks[:, 1:] != model.cfg.bos_token_id).all()
    assert all(len(set(row[1 : L + 1].tolist())) == L for row in toks)  # no repeats inside r
    assert torch.equal(toks, repeated_random_tokens(model, 3, L, seed=1))
    assert not torch.equal(toks, repeated_random_tokens(model, 3, L, seed=2))


def test_pattern_scores_match_loop(model):
    L = 9
    toks = repeated_random_tokens(model, 3, L, seed=0)
    ps = pattern_scores(model, toks, L)
    names = [hook_names.pattern(layer) for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(toks, names_filter=names)
    for layer in range(model.cfg.n_layers):
        pat = cache[names[layer]]
        for head in range(model.cfg.n_heads):
            ind, dup, prev = [], [], []
            for b in range(3):
                for i in range(L + 1, 2 * L + 1):
                    ind.append(pat[b, head, i, i - L + 1].item())
                    dup.append(pat[b, head, i, i - L].item())
                for i in range(1, 2 * L + 1):
                    prev.append(pat[b, head, i, i - 1].item())
            assert ps.induction[layer, head].item() == pytest.approx(sum(ind) / len(ind), abs=1e-6)
            assert ps.duplicate[layer, head].item() == pytest.approx(sum(dup) / len(dup), abs=1e-6)
            assert ps.prev_token[layer, head].item() == pytest.approx(sum(prev) / len(prev), abs=1e-6)
    logits = model(toks)
    logp = torch.log_softmax(logits, -1)
    loop = [sum(-logp[b, t, toks[b, t + 1]].item() for b in range(3)) / 3 for t in range(2 * L)]
    assert ps.loss_by_position.tolist() == pytest.approx(loop, abs=1e-4)
    assert ps.loss_first == pytest.approx(sum(loop[1:L]) / (L - 1), abs=1e-4)
    assert ps.loss_second == pytest.approx(sum(loop[L + 1 :]) / (L - 1), abs=1e-4)


def test_copying_score_matches_full_vocab_eigenvalues(model):
    """The d_head x d_head shortcut equals Re(sum lambda)/sum|lambda| of the full vocab x vocab OV circuit."""
    fast = copying_scores(model)
    cfg = model.cfg
    W_E = model.W_E.detach().double() * cfg.embed_scale
    W_U = model.W_U.detach().double() * model.ln_final.w.detach().double()[:, None]
    for layer in range(cfg.n_layers):
        blk = model.blocks[layer]
        for head in range(cfg.n_heads):
            kv = head // cfg.group_size  # GQA: the query head's key/value head
            W_V = blk.attn._W_V[kv].detach().double() * blk.ln1.w.detach().double()[:, None]
            W_O = blk.attn.W_O[head].detach().double()
            if cfg.sandwich_norm:
                W_O = W_O * blk.ln1_post.w.detach().double()[None, :]
            full = W_E @ W_V @ W_O @ W_U  # (vocab, vocab)
            eig = torch.linalg.eigvals(full)
            expect = (eig.real.sum() / eig.abs().sum()).item()
            assert fast[layer, head].item() == pytest.approx(expect, abs=1e-4)


def test_copying_score_of_an_identity_ov_is_one():
    model = make(LLAMA)
    with torch.no_grad():  # W_V W_O = projection, W_U = W_E^T: a pure copying head
        for p in model.parameters():
            if p.ndim == 1:
                p.fill_(1.0)
        a = model.blocks[0].attn
        v = torch.linalg.qr(torch.randn(32, 8))[0]  # (d_model, d_head) orthonormal
        a.w_v.zero_()
        a.w_v[:8] = v.T  # kv head 0 -> query heads 0 and 1
        a.w_o.zero_()
        a.w_o[:, :8] = v  # query head 0 writes back what it read
    s = copying_scores(model)
    assert s[0, 0].item() == pytest.approx(1.0, abs=1e-5)


def test_k_composition_matches_dense_matrices(model):
    cfg = model.cfg
    targets = [(2, 1), (1, 3)]
    fast = k_composition(model, targets)
    for t, (l2, h2) in enumerate(targets):
        b2 = model.blocks[l2]
        w2 = b2.ln1.w.detach()[:, None]
        W_Q = w2 * b2.attn.W_Q[h2].detach()
        W_K = w2 * b2.attn._W_K[h2 // cfg.group_size].detach()
        W_QK = W_Q @ W_K.T  # (d_model, d_model)
        for l1 in range(cfg.n_layers):
            for h1 in range(cfg.n_heads):
                if l1 >= l2:
                    assert torch.isnan(fast[t, l1, h1])
                    continue
                b1 = model.blocks[l1]
                W_OV = ((b1.ln1.w.detach()[:, None] * b1.attn._W_V[h1 // cfg.group_size].detach())
                        @ b1.attn.W_O[h1].detach())
                if cfg.sandwich_norm:
                    W_OV = W_OV * b1.ln1_post.w.detach()[None, :]
                expect = (W_OV @ W_QK.T).norm() / (W_OV.norm() * W_QK.norm())
                assert fast[t, l1, h1].item() == pytest.approx(expect.item(), rel=1e-4)


def test_direct_logit_matches_loop_without_sandwich_norm():
    model = make(LLAMA)
    cfg, L = model.cfg, 6
    toks = repeated_random_tokens(model, 2, L, seed=3)
    names = [hook_names.z(layer) for layer in range(cfg.n_layers)] + ["ln_final.hook_scale"]
    _, cache = model.run_with_cache(toks, names_filter=names)
    sl = slice(L + 1, 2 * L)
    z = [cache[hook_names.z(layer)][:, sl] for layer in range(cfg.n_layers)]
    targets = toks[:, L + 2 :]
    fast = direct_logit_copying(model, z, [None] * cfg.n_layers, cache["ln_final.hook_scale"][:, sl], targets)
    W_U = model.W_U.detach()
    for layer in range(cfg.n_layers):
        for head in range(cfg.n_heads):
            vals = []
            for b in range(2):
                for j, pos in enumerate(range(L + 1, 2 * L)):
                    out = z[layer][b, j, head] @ model.blocks[layer].attn.W_O[head]
                    out = out / cache["ln_final.hook_scale"][b, pos] * model.ln_final.w
                    logits = out @ W_U
                    vals.append((logits[targets[b, j]] - logits.mean()).item())
            assert fast[layer, head].item() == pytest.approx(sum(vals) / len(vals), abs=1e-4)


def test_tl_mul_score_matches_transformer_lens():
    from transformer_lens.head_detector import (
        compute_head_attention_similarity_score,
        get_induction_head_detection_pattern,
    )

    model = make(LLAMA)
    toks = torch.tensor([[0, 5, 9, 3, 5, 9, 3, 7, 5]])
    ours = tl_induction_detection_pattern(toks[0])
    theirs = get_induction_head_detection_pattern(toks)
    assert torch.equal(ours, theirs.float())
    _, cache = model.run_with_cache(toks, names_filter=[hook_names.pattern(1)])
    pat = cache[hook_names.pattern(1)][0]
    scores = tl_mul_score(pat, ours)
    for h in range(4):
        ref = compute_head_attention_similarity_score(pat[h], theirs, exclude_bos=False, exclude_current_token=False,
                                                      error_measure="mul")
        assert scores[h].item() == pytest.approx(ref, abs=1e-6)


def test_bigram_mask_matches_loop():
    gen = torch.Generator().manual_seed(0)
    toks = torch.randint(0, 5, (3, 30), generator=gen)
    mask = bigram_continuation_mask(toks)
    for b in range(3):
        for t in range(29):
            expect = any(toks[b, s] == toks[b, t] and toks[b, s + 1] == toks[b, t + 1] for s in range(t))
            assert bool(mask[b, t]) == expect


def test_random_heads_same_layers_never_top():
    top = [(1, 0), (1, 1), (3, 2), (3, 2 + 0)][:3]
    for seed in range(20):
        draw = random_heads_like(top, n_layers=5, n_heads=4, seed=seed)
        assert len(draw) == len(top) and len(set(draw)) == len(draw)
        assert not set(draw) & set(top)
        assert sorted(layer for layer, _ in draw) == sorted(layer for layer, _ in top)
    full = [(0, h) for h in range(4)]  # a layer with no free head borrows from the nearest one
    assert all(layer == 1 for layer, _ in random_heads_like(full, n_layers=3, n_heads=4, seed=0))


def test_ablator_matches_plain_ablation(model):
    from interp.interventions import ablate_heads, head_means, intervene

    L = 6
    toks = repeated_random_tokens(model, 2, L, seed=0)
    ab = Ablator(model, toks)
    heads = [(1, 2), (2, 0)]
    for mode in ("zero", "mean"):
        with intervene(model, ablate_heads(heads, mode=mode, means=head_means(model, toks))):
            ref = model(toks, return_type="loss", loss_per_token=True)
        assert torch.allclose(ab.loss(heads, mode), ref, atol=1e-5)
    mask = second_repeat_mask(toks, L)
    assert mask.sum() == 2 * (L - 1) and not mask[:, : L + 1].any()
    assert len(model._forward_hooks) == 0 and all(len(m._forward_hooks) == 0 for m in model.modules())
