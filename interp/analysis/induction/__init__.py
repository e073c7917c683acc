"""Induction heads: find them, explain their circuit, prove them by ablation.

An induction head (Elhage et al. 2021; Olsson et al. 2022, "In-context Learning and Induction Heads")
completes ``A B ... A -> B``: at the second A it attends to the token that followed the first A
(prefix matching) and copies it into the prediction (copying). It needs an earlier previous-token head
whose output at B's position says "my previous token was A", which the induction head reads through its keys
(K-composition). This package scores every head on repeated random tokens (`scores`), reads copying and
composition off the weights (`circuit`), ablates the top heads against random heads from the same layers
and checks natural text (`ablation`), and compares with TransformerLens' head detector (`peer`).

    result = run_induction(model, InductionParams(batch=16, seq_len=64, top_k=5))
    result.heads            # DataFrame, one row per head, sorted by induction score
    result.to_json()        # the --json summary
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from interp.analysis.induction.ablation import Ablator, ablation_study, text_check
from interp.analysis.induction.circuit import copying_scores, direct_logit_copying, k_composition
from interp.analysis.induction.result import InductionResult
from interp.analysis.induction.scores import pattern_scores
from interp.analysis.induction.sequences import (
    file_text_tokens,
    generated_text_tokens,
    ordinary_token_ids,
    repeated_random_tokens,
)
from interp.errors import InvalidInputError
from interp.model import hook_names

__all__ = ["InductionParams", "InductionResult", "run_induction"]


@dataclass(frozen=True)
class InductionParams:
    batch: int = 16
    seq_len: int = 64
    top_k: int = 5
    seeds: int = 5  # random-head control draws
    seed: int = 0
    threshold: float = 0.4  # ARENA's "induction-like" line on this score's scale
    prev_threshold: float = 0.3  # previous-token heads, for the circuit summary
    comp_sources: int = 3  # edges drawn into each induction head
    text: bool = True  # run the natural-text check
    text_path: str | None = None  # a user's text file instead of generated text
    text_samples: int = 4
    text_tokens: int = 128
    text_mode: str = "mean"
    peer: bool = True  # compare with TransformerLens' head detector
    peer_bridge: bool = True  # build the TransformerBridge (loads the HF model; ~20 s)
    peer_texts: int = 4
    peer_seq_len: int = 32
    model_name: str | None = None  # for the bridge; defaults to model.cfg.name

    def __post_init__(self) -> None:
        for name in ("batch", "seq_len", "top_k", "seeds"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        if self.seq_len < 4:
            raise InvalidInputError(f"--seq-len must be at least 4, got {self.seq_len}.")
        if self.text_mode not in ("zero", "mean"):
            raise InvalidInputError(f"text_mode must be 'zero' or 'mean', got {self.text_mode!r}.")


def _label(layer: int, head: int) -> str:
    return f"L{layer}.H{head}"


def run_induction(model, params: InductionParams = InductionParams(), progress=None) -> InductionResult:
    cfg, p, L = model.cfg, params, params.seq_len
    if p.top_k > cfg.n_layers * cfg.n_heads // 2:
        raise InvalidInputError(f"--top-k {p.top_k} leaves too few other heads for the random control "
                                f"({cfg.n_layers * cfg.n_heads} heads in all).")
    step = (lambda msg: progress.write(msg)) if progress is not None and hasattr(progress, "write") else (lambda m: None)
    tokens = repeated_random_tokens(model, p.batch, L, p.seed)  # (b, 1 + 2L)

    # 1. attention scores + loss by position, with the inputs of the direct-logit measure captured
    step("scoring heads on repeated random tokens")
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

    # 2. copying (OV eigenvalues over ordinary tokens; direct logit effect on the data)
    step("copying scores from the OV circuits")
    copying = copying_scores(model, ordinary_token_ids(model))
    post = [store.get(hook_names.ln(layer, "ln1_post", "scale")) for layer in range(cfg.n_layers)]
    direct = direct_logit_copying(model, [store[hook_names.z(layer)] for layer in range(cfg.n_layers)], post,
                                  store["ln_final.hook_scale"], tokens[:, L + 2 : 2 * L + 1])

    # 3. ablation: top-k vs random heads from the same layers
    flat = ps.induction.flatten().topk(p.top_k).indices.tolist()
    top = [(i // cfg.n_heads, i % cfg.n_heads) for i in flat]
    step(f"ablating the top {p.top_k} heads and {p.seeds} random draws")
    ablator = Ablator(model, tokens)
    abl = ablation_study(ablator, top, L, p.seeds, p.seed, progress=progress)

    # 4. circuit: K-composition from earlier heads into each top induction head
    kc = k_composition(model, top)  # (k, n_layers, n_heads)
    comp_rows, edges = [], []
    prev = ps.prev_token
    is_prev_all, is_other_all = [], []
    for t, (tl, th) in enumerate(top):
        scores = kc[t, :tl]  # (tl, h)
        if tl == 0:
            continue
        order = torch.argsort(scores.flatten(), descending=True).tolist()
        for rank, i in enumerate(order):
            sl, sh = i // cfg.n_heads, i % cfg.n_heads
            comp_rows.append({"target": _label(tl, th), "source": _label(sl, sh), "source_layer": sl, "source_head": sh,
                              "k_comp": float(scores[sl, sh]), "source_prev_token": float(prev[sl, sh]), "rank": rank})
            (is_prev_all if prev[sl, sh] > p.prev_threshold else is_other_all).append(float(scores[sl, sh]))
            if rank < p.comp_sources:
                edges.append({"source": _label(sl, sh), "target": _label(tl, th), "source_layer": sl,
                              "source_head": sh, "target_layer": tl, "target_head": th,
                              "k_comp": float(scores[sl, sh]), "source_prev_token": float(prev[sl, sh])})
    composition = pd.DataFrame(comp_rows)
    circuit = {"prev_threshold": p.prev_threshold,
               "prev_heads_mean": float(np.mean(is_prev_all)) if is_prev_all else None,
               "other_heads_mean": float(np.mean(is_other_all)) if is_other_all else None,
               "n_prev_heads": int((prev > p.prev_threshold).sum()),
               "edges": sorted(edges, key=lambda e: -e["k_comp"])}

    # 5. natural text
    text = None
    if p.text:
        step("natural-text check")
        if p.text_path:
            ttoks, source = file_text_tokens(model, Path(p.text_path), p.text_tokens), Path(p.text_path).name
        else:
            ttoks, source = generated_text_tokens(model, p.text_samples, p.text_tokens, p.seed), "generated"
        tc = text_check(model, ttoks, top, abl.random_heads, source, p.text_mode)
        text = {**asdict(tc), "mode": p.text_mode}

    # 6. peer
    peer: dict = {}
    notes: list[str] = []
    if p.peer:
        step("TransformerLens head detector")
        from interp.analysis.induction.peer import compare_with_peer, overlap, top_heads

        pc = compare_with_peer(model, p.model_name or cfg.name, p.peer_texts, p.peer_seq_len, p.seed, p.peer_bridge)
        peer = {"n_texts": pc.n_texts, "bridge_error": pc.bridge_error,
                "tl_logic_top10_overlap": overlap(ps.induction, pc.tl_on_ours),
                "tl_logic_top10": [list(h) for h in top_heads(pc.tl_on_ours, 10)],
                "ours_top10": [list(h) for h in top_heads(ps.induction, 10)]}
        if pc.bridge is not None:
            peer.update({"bridge_top10_overlap": overlap(ps.induction, pc.bridge),
                         "tl_logic_vs_bridge_top10_overlap": overlap(pc.tl_on_ours, pc.bridge),
                         "bridge_top10": [list(h) for h in top_heads(pc.bridge, 10)],
                         "bridge_max_abs_diff_vs_tl_logic": float((pc.bridge - pc.tl_on_ours).abs().max())})
        notes += pc.notes

    # 7. tables
    rows = []
    for layer in range(cfg.n_layers):
        for head in range(cfg.n_heads):
            rows.append({"layer": layer, "head": head, "induction": float(ps.induction[layer, head]),
                         "prev_token": float(ps.prev_token[layer, head]), "duplicate": float(ps.duplicate[layer, head]),
                         "copying": float(copying[layer, head]), "direct_logit": float(direct[layer, head]),
                         "ablation_effect": abl.per_head.get((layer, head), float("nan"))})
    heads = pd.DataFrame(rows).sort_values(["induction", "layer", "head"], ascending=[False, True, True])
    heads = heads.reset_index(drop=True)
    ab_rows = [{"kind": "top", "seed": -1, "mode": m, "heads": " ".join(_label(*h) for h in top), "loss_increase": v}
               for m, v in abl.top.items()]
    for s, draw in enumerate(abl.random_heads):
        for m in ("zero", "mean"):
            ab_rows.append({"kind": "random", "seed": s, "mode": m, "heads": " ".join(_label(*h) for h in draw),
                            "loss_increase": abl.random[m][s]})
    loss_df = pd.DataFrame({"position": np.arange(len(ps.loss_by_position)), "loss": ps.loss_by_position.numpy(),
                            "repeat": np.where(np.arange(len(ps.loss_by_position)) < L, 1, 2)})
    sl, sh = top[0]
    example = {"layer": sl, "head": sh, "pattern": ps.example_patterns[sl, sh].numpy(),
               "tokens": tokens[0].tolist()}
    params_dict = {**asdict(p), "top_heads": top, "model_name": p.model_name or cfg.name}
    return InductionResult(
        model=p.model_name or cfg.name, params=params_dict, heads=heads, loss_by_position=loss_df,
        ablation=pd.DataFrame(ab_rows), composition=composition, text_check=text, peer=peer, circuit=circuit,
        example=example, induction_grid=ps.induction.numpy(), prev_grid=ps.prev_token.numpy(),
        loss_first=ps.loss_first, loss_second=ps.loss_second, notes=notes)
