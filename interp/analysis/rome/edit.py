"""Edits as objects: compute a ROME edit, apply it, undo it bit for bit, stack, save, load, export.

ROME (Meng et al. 2022, "Locating and Editing Factual Associations in GPT") treats W_out of one FFN
as a key-value memory: key k = the hidden vector at the subject's last token, value = W_out k. To make
the subject's value v*, it solves  min ||W' K - W K||_C  s.t.  W' k* = v*,  whose answer is

    W' = W + (v* - W k*) (C^-1 k*)^T / ((C^-1 k*)^T k*)

a rank-one update with left factor delta = v* - W k* (d_model) and right factor
C^-1 k* / (k*^T C^-1 k*) (d_mlp). Our storage is mlp.w_out (d_model, d_mlp), so the update is
``w_out += outer(left, right)``.

Three updates (``ROMEParams.update``), all rank one with left factor delta:

- ``"original"``, the original ROME (our re-implementation of the authors' rome/compute_u.py and compute_v.py,
  equal to the authors' update within 1e-5 on 5 facts: tests/analysis/rome/test_original_update.py), the
  default (it tied with ours on the test part of known_edits on both models, and a tie goes to the original;
  benchmarks/rome-eval-<model>-known_edits-test.md):
  v* = v_0 + delta with v_0 the layer's output at the *bare* prompt's subject token (target_init), the
  direction u = C^-1 k* with k* the mean key over the bare and the prefixed prompts, and the right factor
  u / (k_0 . u) for the bare prompt's key k_0 (the denominator form), so W' k_0 = v* exactly while k* itself
  moves by (k* . u / k_0 . u) delta;
- ``"r-rome"``, the paper's equation (and r-ROME, Gupta et al. 2024, who found the original's mixing of k*
  and k_0 makes sequential edits collapse): v* = W k* + delta, right = C^-1 k* / (k*^T C^-1 k*), so delta
  lands at k*;
- ``"ours"`` (``ROMEParams.ours()``, ``--ours``; MEMIT's default keys). Models without a BOS token (SmolLM2) put
  a subject that opens the prompt beside the attention-sink first token; its key is far from k* (cosine 0.2-0.5
  for "{} is a city in the country of"), so the paper's update barely moves it. We ask for delta at both k* and
  k_0 with the least C-weighted disturbance: right = C^-1 K (K^T C^-1 K)^+ 1 for K = [k*, k_0]
  (``fit_bare_key``), still rank one and equal to r-ROME's when k_0 is parallel to k*; and v* is optimised
  through the update (``value_through_update``, value.py). Both off is r-ROME.

All three add a ridge to C (``ROMEParams.ridge``), which the reference (C from ~44M tokens) does not need.

An :class:`Edit` is a list of such low-rank factors per layer (rank 1
for ROME, rank n over several layers for MEMIT); it and its file format live in `editfile.py` (applying
keeps a copy of each original matrix, so undo restores it exactly; a file is checked completely before
it touches a weight) and are importable from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interp.analysis.rome.covariance import StatsCache, second_moment

# The edit-file classes live in editfile.py (checked loading, all-or-nothing apply, safe saving); kept
# importable from here.
from interp.analysis.rome.editfile import FORMAT, Edit, LayerDelta, export_model, weight_hash  # noqa: F401
from interp.analysis.rome.hparams import ROMEParams, default_layer
from interp.analysis.rome.key import EditRequest, context_templates, subject_keys, target_ids
from interp.analysis.rome.value import optimise_delta
from interp.errors import EditError
from interp.model.generate import generate
from interp.progress import Progress


# -- computing a ROME edit ------------------------------------------------------------------------------
def update_direction(keys: torch.Tensor, c: torch.Tensor, ridge: float) -> torch.Tensor:
    """u (d_mlp,), float64 on the CPU: the update delta u^T moves a key k by (k . u) delta.

    keys (d_mlp,) or (m, d_mlp): u is the smallest in the C^-1 metric (the least disturbance of typical
    keys) with k_i . u = 1 for every given key: u = C^-1 K (K^T C^-1 K)^+ 1. One key gives ROME's
    u = C^-1 k* / (k*^T C^-1 k*); keys that are (nearly) parallel reduce to it through the pseudo-inverse."""
    c = c.double() + ridge * c.diagonal().mean().double() * torch.eye(c.shape[0], dtype=torch.float64)
    k = keys.double().cpu().reshape(-1, c.shape[0]).T  # (d_mlp, m)
    ck = torch.linalg.solve(c, k)  # C^-1 K
    return ck @ (torch.linalg.pinv(k.T @ ck, rtol=1e-6) @ torch.ones(k.shape[1], dtype=torch.float64))


def rank_one_factors(w_out: torch.Tensor, keys: torch.Tensor, delta: torch.Tensor, c: torch.Tensor,
                     ridge: float, u: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """left (d_model, 1) = v* - W k* = delta; right (1, d_mlp) = u (see update_direction; pass it if already
    computed), so that (W + left right) k = W k + delta exactly for each key k given and other keys move as
    little as C allows."""
    right = update_direction(keys, c, ridge) if u is None else u
    return delta.float().reshape(-1, 1).to(w_out.device), right.float().reshape(1, -1).to(w_out.device)


def resolve_layer(model, params: ROMEParams) -> int:
    layer = default_layer(model.cfg.name, model.cfg.n_layers) if params.layer is None else params.layer
    if not 0 <= layer < model.cfg.n_layers:
        raise EditError(f"Layer {layer} does not exist; {model.cfg.name} has layers 0-{model.cfg.n_layers - 1}.")
    return layer


def rome_edit(model, request: EditRequest, params: ROMEParams = ROMEParams(), apply: bool = True,
              progress: Progress | None = None, stats: StatsCache | None = None) -> Edit:
    """Compute (and by default apply) the ROME edit for one request, on the model as it is now. `stats`:
    where the key statistics are cached (one object for a session of edits reads them once)."""
    layer = resolve_layer(model, params)
    stats = stats or StatsCache()
    c = second_moment(model, layer, params.stats, progress, stats)
    contexts = context_templates(model, params.context_lengths, params.context_seed, stats)
    mlp = model.blocks[layer].mlp
    keys = subject_keys(model, request, layer, contexts, params.kl_prompt)  # (contexts + 1, d_mlp)
    k_star = keys[:-1].mean(0)  # ROME's key: the mean over the prefixed prompts (not the KL prompt)
    if params.update == "original":
        # the original (as the authors' compute_v): v* = (the bare prompt's value) + delta; u = C^-1 k*; the right
        # vector divided by k_0 . u, so W' k_0 = W k_0 + delta = v* exactly for the bare prompt's key k_0
        # (contexts[0] is "{}")
        val = optimise_delta(model, request, contexts, layer, mlp, None, params)
        u = update_direction(k_star, c, params.ridge)  # k*^T u = 1; rescaled below
        u = u / float(keys[0].double().cpu() @ u)
        shares = None
        fitted = keys[0]
    else:
        with torch.no_grad():
            v0 = torch.nn.functional.linear(k_star.to(mlp.w_out.dtype), mlp.w_out, mlp.b_out)  # W k* (+ b)
        ours = params.update == "ours"
        # contexts[0] is the bare "{}"
        fitted = torch.stack([k_star, keys[0]]) if ours and params.fit_bare_key else k_star
        u = update_direction(fitted, c, params.ridge)
        through = ours and params.value_through_update
        shares = (keys.double().cpu() @ u).float().to(keys.device) if through else None
        val = optimise_delta(model, request, contexts, layer, mlp, v0, params, shares)
    left, right = rank_one_factors(mlp.w_out, fitted, val.delta, c, params.ridge, u)
    info = {"layer": layer, "update": params.update, "steps": val.steps,
            "shares": None if shares is None else [round(float(x), 3) for x in shares],
            "nll_before": val.nll_before, "nll_after": val.nll_after,
            "delta_norm": float(val.delta.norm()), "v0_norm": val.v0_norm}
    edit = Edit(model.cfg.name, "rome", [LayerDelta(layer, left, right, weight_hash(mlp.w_out))], [request], info)
    return edit.apply(model, check=False) if apply else edit


@torch.no_grad()
def check_target(model, request: EditRequest) -> None:
    """Refuse a target the model already gives (greedy continuation of the prompt starts with it)."""
    tgt = target_ids(model, request.target_new)
    out = generate(model, request.text, max_new_tokens=len(tgt), return_text=False)
    if out[0].tolist() == tgt:
        raise EditError(
            f"The model already answers {request.target_new!r} to {request.text!r}; choose a different target.")


def apply_all(model, edits: Sequence[Edit]) -> None:
    for e in edits:
        e.apply(model)


def undo_all(model, edits: Sequence[Edit]) -> None:
    """Undo a stack of edits in reverse order of application."""
    for e in reversed(list(edits)):
        if e.is_applied:
            e.undo(model)
