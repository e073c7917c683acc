"""Weight-based (mechanistic) view of induction heads: copying by the OV circuit, K-composition.

Elhage et al. (2021, "A Mathematical Framework for Transformer Circuits") and Olsson et al. (2022): an
induction head is two things at once. Its QK circuit *prefix-matches*: the query (token A) looks for keys
whose *previous* token was A; that information reaches the key position only because an earlier
previous-token head wrote "my previous token was A" into the residual stream there (K-composition). Its OV
circuit *copies*: it raises the logit of the token it attends to (B).

Copying score. We use the eigenvalue score of the full OV circuit through embedding and unembedding,
Re(sum lambda) / sum |lambda| of W_E W_V W_O W_U (in [-1, 1]; near 1 = copying). It depends on the weights
alone, so it is not confounded with the attention pattern we already score, and it is comparable across
models. The vocab x vocab matrix is never built: W_E W_V (W_O W_U) and (W_O W_U W_E) W_V share their
non-zero eigenvalues, so we take the eigenvalues of the d_head x d_head matrix W_O (W_U W_E) W_V. Norm
weights are folded in (ln1 into W_V, Gemma's ln1_post into W_O, ln_final into W_U); the norms' scalar
1/rms factors do not change the score, which is scale-invariant. As a second, behavioural measure we also
report each head's direct effect on the logit of the correct (attended) token on the repeated sequences.

GQA: query head h reads key/value head h // group_size, so its OV circuit uses that head's W_V and its QK
circuit that head's W_K.

K-composition (Elhage et al.): ||W_OV(P) W_QK(I)^T||_F / (||W_OV(P)||_F ||W_QK(I)||_F) for an earlier head P
and a later head I, in the row-vector convention (x W). Frobenius norms of these low-rank products are
computed from d_head x d_head Gram matrices, never from d_model x d_model products. RoPE and Q/K norms are
position- and scale-dependent and are left out, as is usual.
"""

from __future__ import annotations

import torch


def _norm_w(norm) -> torch.Tensor | None:
    return norm.w.detach().float() if hasattr(norm, "w") else None


def _scale_rows(w: torch.Tensor | None, m: torch.Tensor) -> torch.Tensor:
    """diag(w) @ m for m (d_model, ...); identity when there is no weight."""
    return m if w is None else w[:, None] * m


def folded_ov(model, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query head: W_V (h, d_model, d_head) with ln1 folded in (the kv head h // group_size's), and
    W_O (h, d_head, d_model) with the post-attention norm folded in (Gemma)."""
    blk = model.blocks[layer]
    w_in = _norm_w(blk.ln1)
    W_V = blk.attn.W_V.detach().float()  # (h, d_model, d_head): already one slice per query head
    if w_in is not None:
        W_V = w_in[None, :, None] * W_V
    W_O = blk.attn.W_O.detach().float()  # (h, d_head, d_model)
    w_post = _norm_w(blk.ln1_post)
    if w_post is not None:
        W_O = W_O * w_post[None, None, :]
    return W_V, W_O


def folded_qk(model, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query head: W_Q (h, d_model, d_head) and its kv head's W_K (h, d_model, d_head), ln1 folded in."""
    blk = model.blocks[layer]
    w_in = _norm_w(blk.ln1)
    W_Q = blk.attn.W_Q.detach().float()
    W_K = blk.attn.W_K.detach().float()  # (h, d_model, d_head): already one slice per query head
    if w_in is not None:
        W_Q, W_K = w_in[None, :, None] * W_Q, w_in[None, :, None] * W_K
    return W_Q, W_K


@torch.no_grad()
def unembed_embed_product(model, token_ids: torch.Tensor | None = None, chunk: int = 16384) -> torch.Tensor:
    """(d_model, d_model) W_U' W_E over the given tokens (default all), with ln_final folded into W_U and
    the embedding scale applied, accumulated in chunks so no (vocab, d_model) copy is made."""
    W_E, W_U = model.W_E.detach(), model.W_U.detach()
    ids = torch.arange(W_E.shape[0]) if token_ids is None else token_ids.cpu()
    out = torch.zeros(W_E.shape[1], W_E.shape[1])
    for start in range(0, len(ids), chunk):
        sel = ids[start : start + chunk].to(W_E.device)
        out += W_U[:, sel].float().cpu() @ W_E[sel].float().cpu()  # (d_model, n) @ (n, d_model)
    out *= model.cfg.embed_scale
    return _scale_rows(_norm_w(model.ln_final), out)


@torch.no_grad()
def copying_scores(model, token_ids: torch.Tensor | None = None) -> torch.Tensor:
    """(n_layers, n_heads) Re(sum lambda) / sum |lambda| of each head's full OV circuit W_E W_V W_O W_U."""
    cfg = model.cfg
    UE = unembed_embed_product(model, token_ids)  # (d_model, d_model)
    out = torch.zeros(cfg.n_layers, cfg.n_heads)
    for layer in range(cfg.n_layers):
        W_V, W_O = folded_ov(model, layer)
        small = W_O @ UE.to(W_O.device) @ W_V  # (h, d_head, d_head): same non-zero eigenvalues as the full OV
        eig = torch.linalg.eigvals(small.double().cpu())  # (h, d_head) complex
        out[layer] = (eig.real.sum(-1) / eig.abs().sum(-1).clamp_min(1e-30)).float()
    return out


def _gram(m: torch.Tensor) -> torch.Tensor:
    return m.transpose(-1, -2) @ m  # (..., d_head, d_head)


@torch.no_grad()
def k_composition(model, targets: list[tuple[int, int]]) -> torch.Tensor:
    """(len(targets), n_layers, n_heads) K-composition score from every earlier head to each target head;
    heads in the target's layer or later get NaN."""
    cfg = model.cfg
    ov = [folded_ov(model, layer) for layer in range(cfg.n_layers)]
    # ||W_V W_O||_F^2 = tr((W_V^T W_V)(W_O W_O^T)) per head
    gv = [_gram(W_V) for W_V, _ in ov]  # (h, dh, dh)
    go = [W_O @ W_O.transpose(-1, -2) for _, W_O in ov]  # (h, dh, dh)
    ov_norm = [torch.einsum("hij,hji->h", a, b).clamp_min(0).sqrt() for a, b in zip(gv, go)]  # (h,)
    out = torch.full((len(targets), cfg.n_layers, cfg.n_heads), float("nan"))
    for t, (layer2, head2) in enumerate(targets):
        W_Q, W_K = folded_qk(model, layer2)
        q, k = W_Q[head2], W_K[head2]  # (d_model, dh) each
        gq = q.T @ q  # (dh, dh)
        qk_norm = torch.trace(gq @ (k.T @ k)).clamp_min(0).sqrt()
        for layer1 in range(layer2):
            W_V, W_O = ov[layer1]
            # W_OV W_QK^T = W_V (W_O k) q^T; ||A M B^T||^2 = tr(M^T A^T A M B^T B) with A = W_V, B = q
            M = W_O @ k  # (h, dh_src, dh)
            sq = torch.einsum("hji,hjk,hkl,li->h", M, gv[layer1], M, gq)  # tr(M^T G_V M G_Q)
            out[t, layer1] = sq.clamp_min(0).sqrt() / (ov_norm[layer1] * qk_norm).clamp_min(1e-30)
    return out


@torch.no_grad()
def direct_logit_copying(model, z_second: list[torch.Tensor], post_scale: list[torch.Tensor | None],
                         final_scale: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(n_layers, n_heads) mean direct effect of each head's output on the logit of the correct next token
    (minus its mean logit over the vocabulary), at second-repeat positions, through the final norm's
    linearisation (divide by that position's rms, multiply by ln_final's weight).

    z_second[l]: (b, n, h, d_head) hook_z at the n scored positions; post_scale[l]: (b, n, 1) or None
    (Gemma's ln1_post rms); final_scale: (b, n, 1) ln_final rms; targets: (b, n) correct next tokens.
    """
    cfg = model.cfg
    w_f = _norm_w(model.ln_final)
    W_U = model.W_U.detach().float()
    u_t = W_U[:, targets].permute(1, 2, 0)  # (b, n, d_model)
    u_t = u_t - W_U.mean(1)  # logit of the target minus the mean logit
    if w_f is not None:
        u_t = u_t * w_f
    u_t = u_t / final_scale
    out = torch.zeros(cfg.n_layers, cfg.n_heads)
    for layer in range(cfg.n_layers):
        _, W_O = folded_ov(model, layer)  # (h, dh, d_model), post-norm weight folded in
        head_out = torch.einsum("bnhd,hdm->bnhm", z_second[layer].float(), W_O)  # (b, n, h, d_model)
        if post_scale[layer] is not None:
            head_out = head_out / post_scale[layer][:, :, None]
        out[layer] = torch.einsum("bnhm,bnm->h", head_out, u_t) / (u_t.shape[0] * u_t.shape[1])
    return out


def composition_summary(model, top: list[tuple[int, int]], prev: torch.Tensor, prev_threshold: float,
                        n_sources: int):
    """K-composition from every earlier head into each top head, as a table (target, source, k_comp,
    source_prev_token, rank), and the circuit summary: mean K-composition from previous-token heads vs other
    earlier heads, and the `n_sources` strongest edges into each top head."""
    import numpy as np
    import pandas as pd

    n_heads = model.cfg.n_heads
    kc = k_composition(model, top)  # (k, n_layers, n_heads)
    rows, edges, from_prev, from_other = [], [], [], []
    for t, (tl, th) in enumerate(top):
        if tl == 0:
            continue
        scores = kc[t, :tl]  # (tl, h)
        for rank, i in enumerate(torch.argsort(scores.flatten(), descending=True).tolist()):
            sl, sh = i // n_heads, i % n_heads
            score, prev_score = float(scores[sl, sh]), float(prev[sl, sh])
            rows.append({"target": f"L{tl}.H{th}", "source": f"L{sl}.H{sh}", "source_layer": sl, "source_head": sh,
                         "k_comp": score, "source_prev_token": prev_score, "rank": rank})
            (from_prev if bool(prev[sl, sh] > prev_threshold) else from_other).append(score)
            if rank < n_sources:
                edges.append({"source": f"L{sl}.H{sh}", "target": f"L{tl}.H{th}", "source_layer": sl,
                              "source_head": sh, "target_layer": tl, "target_head": th, "k_comp": score,
                              "source_prev_token": prev_score})
    circuit = {"prev_threshold": prev_threshold,
               "prev_heads_mean": float(np.mean(from_prev)) if from_prev else None,
               "other_heads_mean": float(np.mean(from_other)) if from_other else None,
               "n_prev_heads": int((prev > prev_threshold).sum()),
               "edges": sorted(edges, key=lambda e: -e["k_comp"])}
    return pd.DataFrame(rows), circuit
