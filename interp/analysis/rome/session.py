"""Many edits into one model: an :class:`EditSession` writes requests one step at a time with any editor
(ROME, MEMIT, AlphaEdit, FT, FT-L), watches for the collapse signals, and undoes everything exactly.

- A step is one request for ROME / FT / FT-L (sequential editing, as Gupta et al. 2024 measure it) and one
  batch for MEMIT / AlphaEdit. Each step's update is computed on the model as it is (earlier steps applied),
  then checked, then added to W_out.
- Undo: the session keeps one copy of each W_out it touched, taken before its first change, and copies it
  back: bit for bit, whatever the number of edits (an Edit object per step would keep two copies per step).
- Saving: `combined()` is one :class:`Edit` for the whole sequence: per layer the total change W - W0 as
  thin factors (a QR of the change in float64: left (d_model, k), right (k, d_mlp) with orthonormal rows),
  made for the unedited weights; loading and applying it to the unedited model gives the edited weights to
  float32 rounding.
- The first safety rail (issue 32): an update whose norm is far outside those of the earlier steps (robust
  z-score over the median and MAD above `outlier_z`, and more than `outlier_ratio` times the median) is
  flagged before it is applied; with ``on_outlier="stop"`` it is not applied and the session stops. Large
  update norms precede a collapse (Gupta et al. 2024, "Model Editing at Scale leads to Gradual and
  Catastrophic Forgetting"). The second rail, perplexity, is measured by the callers (`perplexity` below).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from interp.analysis.rome.alphaedit import AlphaEditParams, AlphaEditState, alphaedit_edit
from interp.analysis.rome.covariance import StatsCache
from interp.analysis.rome.edit import Edit, LayerDelta, rome_edit, weight_hash
from interp.analysis.rome.finetune import FTParams, ft_edit
from interp.analysis.rome.hparams import MEMITParams, ROMEParams
from interp.analysis.rome.key import EditRequest
from interp.errors import EditError, InvalidInputError

EDITORS = ("rome", "memit", "alphaedit", "ft", "ft-l")
BATCHED = ("memit", "alphaedit")  # one step is a batch of requests; the others edit one request a step
HELDOUT = Path(__file__).resolve().parents[3] / "experiments" / "data" / "heldout" / "public_domain.txt"


@dataclass(frozen=True)
class EditorParams:
    """Every editor's settings, and the rails'; one object so a run of several editors is one params."""

    rome: ROMEParams = field(default_factory=ROMEParams)
    memit: MEMITParams = field(default_factory=MEMITParams)
    alphaedit: AlphaEditParams = field(default_factory=AlphaEditParams)
    ft: FTParams = field(default_factory=FTParams)  # its norm_constraint is FT-L's; FT drops it
    outlier_z: float = 6.0
    outlier_ratio: float = 3.0
    min_history: int = 5  # earlier steps needed before an update can be called an outlier
    on_outlier: str = "flag"  # "flag": record and apply; "stop": do not apply, stop the session
    collapse_factor: float = 10.0  # perplexity above this many times the unedited model's: collapsed

    def __post_init__(self) -> None:
        if self.on_outlier not in ("flag", "stop"):
            raise InvalidInputError(f"on_outlier must be flag or stop, not {self.on_outlier!r}.")
        if self.collapse_factor <= 1:
            raise InvalidInputError("The collapse factor must be above 1.")


class OutlierStop(EditError):
    """An update far outside the earlier ones, not applied (on_outlier="stop")."""


@dataclass
class Step:
    index: int
    n_edits: int  # requests written so far, this step included
    update_norm: float  # ||Delta W||_F of this step over its layers
    flagged: bool
    seconds: float  # computing and applying the update


class EditSession:
    def __init__(self, model, method: str, params: EditorParams = EditorParams(), stats: StatsCache | None = None,
                 progress=None):
        if method not in EDITORS:
            raise InvalidInputError(f"Unknown editor {method!r}; use one of {', '.join(EDITORS)}.")
        self.model, self.method, self.params = model, method, params
        self.stats = stats or StatsCache()
        self.progress = progress
        self.alpha_state = AlphaEditState()
        self.originals: dict[int, torch.Tensor] = {}  # layer -> W_out before the first change
        self.steps: list[Step] = []
        self.requests: list[EditRequest] = []
        self.infos: list[dict] = []

    @property
    def n_edits(self) -> int:
        return len(self.requests)

    def batches(self, requests: Sequence[EditRequest], batch_size: int) -> list[list[EditRequest]]:
        size = batch_size if self.method in BATCHED else 1
        return [list(requests[i:i + size]) for i in range(0, len(requests), size)]

    def compute(self, requests: list[EditRequest]) -> Edit:
        """The next step's update on the model as it is now, not applied."""
        p, m = self.params, self.model
        if self.method == "rome":
            if len(requests) != 1:
                raise EditError("ROME writes one request a step.")
            return rome_edit(m, requests[0], p.rome, apply=False, progress=self.progress, stats=self.stats)
        if self.method == "memit":
            from interp.analysis.rome.memit import memit_edit

            return memit_edit(m, requests, p.memit, apply=False, progress=self.progress, stats=self.stats)
        if self.method == "alphaedit":
            return alphaedit_edit(m, requests, p.alphaedit, self.alpha_state, apply=False, progress=self.progress,
                                  stats=self.stats)
        ft = p.ft if self.method == "ft-l" else dataclasses.replace(p.ft, norm_constraint=None)
        return ft_edit(m, requests, ft, apply=False)

    def prepare(self) -> None:
        """Read (or compute) the key statistics, contexts and AlphaEdit's projectors now, so a step's seconds
        measure the edit alone (as run_edit_eval times its edits)."""
        from interp.analysis.rome.covariance import second_moment
        from interp.analysis.rome.edit import resolve_layer
        from interp.analysis.rome.hparams import default_memit_layers
        from interp.analysis.rome.key import context_templates

        p, m = self.params, self.model
        if self.method in ("ft", "ft-l"):
            return
        mp = p.alphaedit.memit if self.method == "alphaedit" else p.memit
        rp = p.rome if self.method == "rome" else mp.rome
        layers = ([resolve_layer(m, rp)] if self.method == "rome"
                  else list(mp.layers or default_memit_layers(m.cfg.name, m.cfg.n_layers)))
        for layer in layers:
            c = second_moment(m, layer, rp.stats, self.progress, self.stats)
            if self.method == "alphaedit":
                self.alpha_state.prepare(layer, c, p.alphaedit)
        context_templates(m, rp.context_lengths, rp.context_seed, self.stats)

    def is_outlier(self, norm: float) -> bool:
        """Far outside the earlier steps' update norms (robust z over median / MAD, and a ratio to the median)."""
        earlier = np.array([s.update_norm for s in self.steps])
        if len(earlier) < self.params.min_history or not math.isfinite(norm):
            return not math.isfinite(norm)
        med = float(np.median(earlier))
        mad = 1.4826 * float(np.median(np.abs(earlier - med))) or 1e-12 * max(med, 1e-30)
        return (norm - med) / mad > self.params.outlier_z and norm > self.params.outlier_ratio * med

    def step(self, requests: list[EditRequest]) -> Step:
        """Compute the next update, check it, apply it (unless it is an outlier and on_outlier is "stop")."""
        t0 = time.perf_counter()
        edit = self.compute(requests)
        with torch.no_grad():
            norm = math.sqrt(sum(float(d.matrix.double().pow(2).sum()) for d in edit.deltas))
        flagged = self.is_outlier(norm)
        if flagged and self.params.on_outlier == "stop":
            median = float(np.median([s.update_norm for s in self.steps]))
            raise OutlierStop(f"Step {len(self.steps) + 1}'s update norm {norm:.3g} is far outside the earlier "
                              f"ones (median {median:.3g}); it was not applied.")
        with torch.no_grad():
            for d in edit.deltas:
                w = self.model.blocks[d.layer].mlp.w_out
                self.originals.setdefault(d.layer, w.detach().clone())
                w.add_(d.matrix.to(device=w.device, dtype=w.dtype))
        self.requests += requests
        self.infos.append(edit.info)
        step = Step(len(self.steps) + 1, self.n_edits, norm, flagged, time.perf_counter() - t0)
        self.steps.append(step)
        return step

    def change_norms(self) -> dict[int, tuple[float, float]]:
        """Per touched layer: ||W - W0||_F and that over ||W0||_F."""
        out = {}
        for layer, w0 in sorted(self.originals.items()):
            diff = (self.model.blocks[layer].mlp.w_out.detach().double() - w0.double()).norm()
            out[layer] = (float(diff), float(diff / w0.double().norm()))
        return out

    @torch.no_grad()
    def restore(self) -> bool:
        """Put every touched W_out back; True when each equals its copy bit for bit afterwards."""
        for layer, w0 in self.originals.items():
            self.model.blocks[layer].mlp.w_out.copy_(w0)
        return all(torch.equal(self.model.blocks[l].mlp.w_out, w0) for l, w0 in self.originals.items())

    def as_applied_edit(self) -> Edit:
        """The whole sequence as one applied :class:`Edit` (`combined()`) whose undo puts back this session's own
        copies of the unedited matrices: bit for bit, as `restore()` does. The weights stay as the steps left them
        (not re-applied from the factors), and the session hands its copies over (it holds none afterwards)."""
        edit = self.combined()
        edit._originals = dict(self.originals)
        edit._applied = {l: self.model.blocks[l].mlp.w_out.detach().clone() for l in self.originals}
        self.originals = {}
        return edit

    def combined(self) -> Edit:
        """The whole sequence as one Edit for the unedited weights (see the module docstring)."""
        if not self.steps:
            raise EditError("No edit was applied, so there is nothing to save.")
        deltas = []
        for layer, w0 in sorted(self.originals.items()):
            change = self.model.blocks[layer].mlp.w_out.detach().double().cpu() - w0.double().cpu()
            q, r = torch.linalg.qr(change.T)  # change^T = Q R: change = R^T Q^T, Q orthonormal columns
            deltas.append(LayerDelta(layer, r.T.float().contiguous(), q.T.float().contiguous(), weight_hash(w0)))
        info = {"editor": self.method, "steps": len(self.steps), "edits": self.n_edits,
                "update_norms": [round(s.update_norm, 6) for s in self.steps],
                "flagged_steps": [s.index for s in self.steps if s.flagged]}
        return Edit(self.model.cfg.name, self.method, deltas, list(self.requests), info)


@torch.no_grad()
def perplexity(model, ids: list[int], window: int = 256) -> float:
    """exp of the mean next-token NLL over `ids`, read in consecutive windows of `window` tokens."""
    total, count = 0.0, 0
    window = min(window, model.cfg.n_ctx)
    for start in range(0, max(len(ids) - 1, 1), window):
        chunk = ids[start:start + window + 1]
        if len(chunk) < 2:
            break
        tokens = torch.tensor([chunk], device=model.device)
        logits = model(tokens[:, :-1])  # (1, p, vocab)
        nll = torch.nn.functional.cross_entropy(logits[0].float(), tokens[0, 1:], reduction="sum")
        total, count = total + float(nll), count + len(chunk) - 1
    return math.exp(total / max(count, 1))


def heldout_ids(model, path: str | None, max_tokens: int) -> list[int]:
    """The held-out text's token ids (the shipped public-domain text unless a path is given), cut to max_tokens."""
    from interp.errors import InvalidInputError as _Invalid

    file = Path(path) if path else HELDOUT
    if not file.is_file():
        raise _Invalid(f"The held-out text {file} does not exist; give a .txt file.")
    ids = model.encode(file.read_text(encoding="utf-8", errors="replace"))[:max_tokens]
    if len(ids) < 2:
        raise _Invalid(f"The held-out text {file} holds fewer than two tokens.")
    return ids


def peak_memory_mb(model) -> float:
    """The process's peak resident memory (CPU), or the accelerator's peak allocation when the model is on one."""
    if model.device.type == "cuda":
        return torch.cuda.max_memory_allocated(model.device) / 2 ** 20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
