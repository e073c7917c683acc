"""AlphaEdit: MEMIT's update projected onto the null space of the knowledge to keep (Fang et al., ICLR 2025,
"AlphaEdit: Null-Space Constrained Knowledge Editing for Language Models").

MEMIT's layer update trades the new keys K1 against the preserved keys K0 in one least-squares problem, so
every edit moves the outputs W K0 a little, and a thousand sequential edits add up. AlphaEdit instead
writes only into directions the preserved keys do not use: with P the projector onto the null space of
K0 K0^T, any update of the form Delta P leaves W K0 unchanged (Delta P K0 = 0). For the new keys K1, the
residual R (the same per-layer share of z - h as MEMIT's) and the keys already written by earlier
AlphaEdit batches Kp (so a new batch does not undo them), it solves

    min ||(W + Delta P) K1 - (W K1 + R)||^2 + ||Delta P||^2 + ||Delta P Kp||^2

whose answer, in our storage (w_out += left @ right, keys as rows), is

    Delta P = R^T K1 P (Kp^T Kp P + K1^T K1 P + alpha I)^-1        (alpha: ``l2``)

What is taken from where (read, not copied; this code is ours):
- the paper, eq. 7 and 14: the projected objective and the closed form above;
- the authors' code (github.com/jianghoucheng/AlphaEdit), ``experiments/evaluate.py:get_project``: P =
  U_small U_small^T from the SVD of MEMIT's key second moment (``layer_stats`` mom2, the same statistics C
  that MEMIT and ROME use here, `covariance.py`), keeping the singular vectors whose singular value is
  below ``nullspace_threshold`` (an absolute threshold, 2e-2 in ``hparams/AlphaEdit/*.json``);
- ``AlphaEdit/AlphaEdit_main.py``: the update solved as solve(P (K1 K1^T + cache_c) + L2 I, P K1 R^T) (the
  transpose of ours; L2 = 10 in the hparams), everything else as memit_main (z at the last layer, the
  residual spread over the layers in order, keys recomputed after each layer); and after the batch,
  ``cache_c += K K^T`` with each layer's keys recomputed on the edited model;
- ``hparams/AlphaEdit/gpt2-xl.json``: threshold 2e-2, L2 10, MEMIT's layers and z settings otherwise.
Our departures: the z and key settings are MEMITParams' (ours by default, ``MEMITParams.reference()`` for
the original), and ``relative_threshold`` optionally sets the threshold as a fraction of the largest
singular value, since the absolute 2e-2 was chosen for GPT-2 XL / GPT-J / Llama-3 keys (the number of null
directions it keeps is recorded in the edit's info, per layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from interp.analysis.rome.covariance import StatsCache, second_moment
from interp.analysis.rome.edit import Edit
from interp.analysis.rome.hparams import MEMITParams, default_memit_layers
from interp.analysis.rome.key import EditRequest, context_templates
from interp.errors import InvalidInputError


@dataclass(frozen=True)
class AlphaEditParams:
    memit: MEMITParams = field(default_factory=MEMITParams)  # layers, z optimisation, keys: MEMIT's
    threshold: float = 2e-2  # nullspace_threshold: singular values of C below it span the null space
    relative_threshold: float | None = None  # else: a fraction of C's largest singular value
    l2: float = 10.0  # the authors' L2: the ridge alpha I in the solve

    def __post_init__(self) -> None:
        if self.threshold <= 0 or (self.relative_threshold is not None and not 0 < self.relative_threshold < 1):
            raise InvalidInputError("AlphaEdit's null-space threshold must be positive (relative: between 0 and 1).")
        if self.l2 < 0:
            raise InvalidInputError("AlphaEdit's L2 weight must not be negative.")


def null_space_projector(c: torch.Tensor, threshold: float, relative: float | None = None) -> torch.Tensor:
    """P (d_mlp, d_mlp), float64: the projector onto the singular vectors of C whose singular value is below
    the threshold (absolute, or `relative` times the largest). The authors take an SVD; C is symmetric, so its
    singular values are its eigenvalues' magnitudes with the same vectors, and eigh gives the same P faster."""
    evals, u = torch.linalg.eigh(c.double().cpu())
    s = evals.abs()
    cut = relative * float(s.max()) if relative is not None else threshold
    small = u[:, s < cut]  # (d_mlp, null dimension)
    return small @ small.T


class AlphaEditState:
    """What AlphaEdit carries from one batch to the next, per layer: P (fixed, from the unedited model's
    statistics) and Kp^T Kp, the second moment of every key written so far (the authors' cache_c)."""

    def __init__(self) -> None:
        self.projectors: dict[int, torch.Tensor] = {}
        self.written: dict[int, torch.Tensor] = {}
        self.null_dims: dict[int, int] = {}

    def prepare(self, layer: int, c: torch.Tensor, params: AlphaEditParams) -> None:
        if layer not in self.projectors:
            p = null_space_projector(c, params.threshold, params.relative_threshold)
            self.projectors[layer] = p
            self.written[layer] = torch.zeros_like(p)
            self.null_dims[layer] = int(round(float(p.trace())))


def projected_update(keys: torch.Tensor, resid: torch.Tensor, p: torch.Tensor, written: torch.Tensor,
                     l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """left (d_model, n) = R^T and right (n, d_mlp) = [(P (K^T K + Kp^T Kp) + l2 I)^-1 P K^T]^T, float64 on the
    CPU, so left @ right = R^T K P (...)^-1 ends in P (push-through identity) and leaves every preserved key's
    output alone. keys (n, d_mlp), resid (n, d_model)."""
    k = keys.double().cpu()
    a = p @ (k.T @ k + written) + l2 * torch.eye(p.shape[0], dtype=torch.float64)  # (d_mlp, d_mlp)
    x = torch.linalg.solve(a, p @ k.T)  # (d_mlp, n); the authors' update is x @ R
    return resid.double().cpu().T, x.T


def alphaedit_edit(model, requests: Sequence[EditRequest], params: AlphaEditParams = AlphaEditParams(),
                   state: AlphaEditState | None = None, apply: bool = True, progress=None,
                   stats: StatsCache | None = None) -> Edit:
    """Compute (and by default apply) one AlphaEdit batch; `state` carries P and the written keys between
    batches (pass the same object to every batch of a sequence; a fresh one forgets earlier batches)."""
    from interp.analysis.rome.memit import _states, memit_edit

    requests = list(requests)
    state = state if state is not None else AlphaEditState()
    stats = stats or StatsCache()
    mp = params.memit
    layers = sorted(mp.layers or default_memit_layers(model.cfg.name, model.cfg.n_layers))
    for layer in layers:
        state.prepare(layer, second_moment(model, layer, mp.rome.stats, progress, stats), params)

    def solve(layer, keys, resid, c):
        return projected_update(keys, resid, state.projectors[layer], state.written[layer], params.l2)

    edit = memit_edit(model, requests, mp, apply=True, progress=progress, stats=stats, solve=solve)
    # cache_c: each layer's keys for this batch, recomputed on the edited model (AlphaEdit_main's last loop)
    contexts = context_templates(model, mp.rome.context_lengths, mp.rome.context_seed, stats)
    rows = "original" if mp.update == "original" else ("mean+bare" if mp.rome.fit_bare_key else "mean")
    for layer in layers:
        keys = _states(model, requests, contexts, layer, layers[-1], rows)[0].double().cpu()
        state.written[layer] += keys.T @ keys
    edit.method = "alphaedit"
    edit.info.update({"null_dims": {str(k): v for k, v in state.null_dims.items() if k in layers},
                      "l2": params.l2, "threshold": params.relative_threshold or params.threshold,
                      "threshold_kind": "relative" if params.relative_threshold else "absolute"})
    if not apply:
        edit.undo(model)
    return edit
