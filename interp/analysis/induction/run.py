"""`run_induction`: score every head, read the circuit off the weights, ablate, check text, ask the peer."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from interp.analysis.induction.ablation import AblationSummary, Ablator, ablation_study, text_check
from interp.analysis.induction.circuit import composition_summary, copying_scores, direct_logit_copying
from interp.analysis.induction.params import InductionParams
from interp.analysis.induction.result import InductionResult, label
from interp.analysis.induction.scores import PatternScores, pattern_scores
from interp.analysis.induction.sequences import (
    file_text_tokens,
    generated_text_tokens,
    ordinary_token_ids,
    repeated_random_tokens,
)
from interp.errors import InvalidInputError
from interp.model import hook_names
from interp.progress import Progress

Head = tuple[int, int]


def run_induction(model, params: InductionParams = InductionParams(),
                  progress: Progress | None = None) -> InductionResult:
    """Heads scored on ``[BOS] + r + r``, their copying and K-composition, the ablation proof against random
    heads from the same layers, the natural-text check and the peer comparison (see the package docstring)."""
    start = time.perf_counter()
    cfg, p = model.cfg, params
    if p.top_k > cfg.n_layers * cfg.n_heads // 2:
        raise InvalidInputError(f"--top-k {p.top_k} leaves too few other heads for the random control "
                                f"({cfg.n_layers * cfg.n_heads} heads in all).")
    tokens = repeated_random_tokens(model, p.batch, p.seq_len, p.seed)  # (b, 1 + 2L)
    ps, direct = score_heads(model, tokens, p.seq_len)
    copying = copying_scores(model, ordinary_token_ids(model))
    top = top_heads(ps.induction, p.top_k)
    # selected on one batch, ablated on another: the ablation is not measured where the heads were chosen
    held = repeated_random_tokens(model, p.batch, p.seq_len, p.ablation_batch_seed)
    abl = ablation_study(Ablator(model, held), top, p.seq_len, p.seeds, p.seed, progress=progress)
    composition, circuit = composition_summary(model, top, ps.prev_token, p.prev_threshold, p.comp_sources)
    text = natural_text(model, p, top, abl.random_heads)
    peer, notes = peer_summary(model, p, ps.induction)
    paths = path_circuit(model, p, ps) if p.circuit == "path" else None
    sl, sh = top[0]
    name = p.model_name or cfg.name
    return InductionResult(
        model=name, params=p, seconds=time.perf_counter() - start, top_heads=top,
        heads=head_table(ps, copying, direct, abl), loss_by_position=loss_table(ps, p.seq_len),
        ablation=ablation_table(abl), ablation_sequences=sequence_table(abl),
        composition=composition, text_check=text, peer=peer, circuit=circuit,
        example={"layer": sl, "head": sh, "pattern": ps.example_patterns[sl, sh].numpy(), "tokens": tokens[0].tolist()},
        induction_grid=ps.induction.numpy(), prev_grid=ps.prev_token.numpy(),
        loss_first=ps.loss_first, loss_second=ps.loss_second, notes=notes, paths=paths)


def path_circuit(model, p: InductionParams, ps: PatternScores) -> pd.DataFrame | None:
    """Every earlier head path-patched into the key inputs of the top induction heads (outside layer 0):
    one row per sender with its effect on the second-copy log-probability and its previous-token score."""
    from interp.patching.induction import induction_paths

    ranked = top_heads(ps.induction, model.cfg.n_layers * model.cfg.n_heads)
    receivers = [h for h in ranked if h[0] > 0][:p.path_receivers]
    if not receivers:
        return None
    found = induction_paths(model, receivers, seq_len=p.path_seq_len, n=p.path_pairs, seed=p.seed)
    rows = [{"sender": label(l, h), "layer": l, "head": h, "effect": float(e), "prev_token": float(ps.prev_token[l, h]),
             "receivers": " ".join(label(*r) for r in receivers)} for (l, h), e in zip(found.senders, found.effects)]
    return pd.DataFrame(rows).sort_values("effect", ascending=False, ignore_index=True)


def score_heads(model, tokens: torch.Tensor, seq_len: int) -> tuple[PatternScores, torch.Tensor]:
    """Attention scores and loss by position (one pass), with the inputs of the direct-logit measure captured
    in that same pass; returns (scores, direct logit effect (n_layers, n_heads))."""
    cfg, L = model.cfg, seq_len
    scored = slice(L + 1, 2 * L)  # second-repeat query positions that have a next token
    store: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(act, hook):
            store[name] = act[:, scored].detach()

        return hook

    names = [hook_names.z(layer) for layer in range(cfg.n_layers)] + ["ln_final.hook_scale"]
    if cfg.sandwich_norm:
        names += [hook_names.ln(layer, "ln1_post", "scale") for layer in range(cfg.n_layers)]
    ps = pattern_scores(model, tokens, L, extra_hooks=[(n, keep(n)) for n in names])
    post = [store.get(hook_names.ln(layer, "ln1_post", "scale")) for layer in range(cfg.n_layers)]
    direct = direct_logit_copying(model, [store[hook_names.z(layer)] for layer in range(cfg.n_layers)], post,
                                  store["ln_final.hook_scale"], tokens[:, L + 2 : 2 * L + 1])
    return ps, direct


def top_heads(scores: torch.Tensor, k: int) -> list[Head]:
    """The k (layer, head) pairs with the highest score, best first."""
    n_heads = scores.shape[1]
    return [(i // n_heads, i % n_heads) for i in scores.flatten().topk(k).indices.tolist()]


def natural_text(model, p: InductionParams, top: list[Head], draws: list[list[Head]]) -> dict | None:
    """The natural-text check on generated text (or the user's file), as a plain dict; None when off."""
    if not p.text:
        return None
    if p.text_path:
        tokens, source = file_text_tokens(model, Path(p.text_path), p.text_tokens), Path(p.text_path).name
    else:
        tokens, source = generated_text_tokens(model, p.text_samples, p.text_tokens, p.seed), "generated"
    return {**asdict(text_check(model, tokens, top, draws, source, p.text_mode)), "mode": p.text_mode}


def peer_summary(model, p: InductionParams, induction: torch.Tensor) -> tuple[dict, list[str]]:
    """Top-10 agreement with TransformerLens' head detector; ({}, []) when the peer is off."""
    if not p.peer:
        return {}, []
    from interp.analysis.induction.peer import compare_with_peer, overlap, top_heads as peer_top

    pc = compare_with_peer(model, p.model_name or model.cfg.name, p.peer_texts, p.peer_seq_len, p.seed,
                           p.peer_bridge)
    peer = {"n_texts": pc.n_texts, "bridge_error": pc.bridge_error,
            "tl_logic_top10_overlap": overlap(induction, pc.tl_on_ours),
            "tl_logic_top10": [list(h) for h in peer_top(pc.tl_on_ours, 10)],
            "ours_top10": [list(h) for h in peer_top(induction, 10)]}
    if pc.bridge is not None:
        peer.update({"bridge_top10_overlap": overlap(induction, pc.bridge),
                     "tl_logic_vs_bridge_top10_overlap": overlap(pc.tl_on_ours, pc.bridge),
                     "bridge_top10": [list(h) for h in peer_top(pc.bridge, 10)],
                     "bridge_max_abs_diff_vs_tl_logic": float((pc.bridge - pc.tl_on_ours).abs().max())})
    return peer, list(pc.notes)


def head_table(ps: PatternScores, copying: torch.Tensor, direct: torch.Tensor, abl: AblationSummary) -> pd.DataFrame:
    """One row per head, sorted by induction score (ties by layer, head)."""
    n_layers, n_heads = ps.induction.shape
    rows = [{"layer": layer, "head": head, "induction": float(ps.induction[layer, head]),
             "prev_token": float(ps.prev_token[layer, head]), "duplicate": float(ps.duplicate[layer, head]),
             "copying": float(copying[layer, head]), "direct_logit": float(direct[layer, head]),
             "ablation_effect": abl.per_head.get((layer, head), float("nan"))}
            for layer in range(n_layers) for head in range(n_heads)]
    heads = pd.DataFrame(rows).sort_values(["induction", "layer", "head"], ascending=[False, True, True])
    return heads.reset_index(drop=True)


def ablation_table(abl: AblationSummary) -> pd.DataFrame:
    """kind (top / random), seed, mode, heads, loss_increase: one row per ablation run."""
    rows = [{"kind": "top", "seed": -1, "mode": m, "heads": " ".join(label(*h) for h in abl.top_heads),
             "loss_increase": v} for m, v in abl.top.items()]
    for s, draw in enumerate(abl.random_heads):
        for m in ("zero", "mean"):
            rows.append({"kind": "random", "seed": s, "mode": m, "heads": " ".join(label(*h) for h in draw),
                         "loss_increase": abl.random[m][s]})
    return pd.DataFrame(rows)


def sequence_table(abl: AblationSummary) -> pd.DataFrame:
    """sequence, mode, loss_increase: the top heads' ablation on each sequence of the ablation batch."""
    return pd.DataFrame([{"sequence": i, "mode": m, "loss_increase": v}
                         for m, values in abl.top_per_sequence.items() for i, v in enumerate(values)])


def loss_table(ps: PatternScores, seq_len: int) -> pd.DataFrame:
    n = len(ps.loss_by_position)
    return pd.DataFrame({"position": np.arange(n), "loss": ps.loss_by_position.numpy(),
                         "repeat": np.where(np.arange(n) < seq_len, 1, 2)})
