"""Edits as objects: compute a ROME edit, apply it, undo it bit for bit, stack, save, load, export.

ROME (Meng et al. 2022, "Locating and Editing Factual Associations in GPT") treats W_out of one FFN
as a key-value memory: key k = the hidden vector at the subject's last token, value = W_out k. To make
the subject's value v*, it solves  min ||W' K - W K||_C  s.t.  W' k* = v*,  whose answer is

    W' = W + (v* - W k*) (C^-1 k*)^T / ((C^-1 k*)^T k*)

a rank-one update with left factor delta = v* - W k* (d_model) and right factor
C^-1 k* / (k*^T C^-1 k*) (d_mlp). Our storage is mlp.w_out (d_model, d_mlp), so the update is
``w_out += outer(left, right)``.

Three updates (``ROMEParams.update``), all rank one with left factor delta:

- ``"original"``, what the authors' code (rome/compute_u.py, compute_v.py) computes and ``--reference`` runs:
  v* = v_0 + delta with v_0 the layer's output at the *bare* prompt's subject token (target_init), the
  direction u = C^-1 k* with k* the mean key over the bare and the prefixed prompts, and the right factor
  u / (k_0 . u) for the bare prompt's key k_0 (the denominator form), so W' k_0 = v* exactly while k* itself
  moves by (k* . u / k_0 . u) delta;
- ``"r-rome"``, the paper's equation (and r-ROME, Gupta et al. 2024, who found the original's mixing of k*
  and k_0 makes sequential edits collapse): v* = W k* + delta, right = C^-1 k* / (k*^T C^-1 k*), so delta
  lands at k*;
- ``"ours"`` (the default). Models without a BOS token (SmolLM2) put a subject that opens the prompt beside
  the attention-sink first token; its key is far from k* (cosine 0.2-0.5 for "{} is a city in the country
  of"), so the paper's update barely moves it. We ask for delta at both k* and k_0 with the least
  C-weighted disturbance: right = C^-1 K (K^T C^-1 K)^+ 1 for K = [k*, k_0] (``fit_bare_key``), still rank
  one and equal to r-ROME's when k_0 is parallel to k*; and v* is optimised through the update
  (``value_through_update``, value.py). Both off is r-ROME.

All three add a ridge to C (``ROMEParams.ridge``), which the reference (C from ~44M tokens) does not need.

An :class:`Edit` is a list of such low-rank factors per layer (rank 1
for ROME, rank n over several layers for MEMIT). Applying keeps a copy of each original matrix, so
undo restores it exactly (never by subtraction); edits stack and undo in reverse order. A saved edit
is a safetensors file of the factors with JSON metadata: model, layers, requests, the sha256 of each
layer's W_out before the edit, date. Loading refuses another model's edit or different base weights.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from interp.analysis.rome.covariance import StatsCache, second_moment
from interp.analysis.rome.hparams import ROMEParams, default_layer
from interp.analysis.rome.key import EditRequest, context_templates, subject_keys, target_ids
from interp.analysis.rome.value import optimise_delta
from interp.errors import EditError
from interp.fingerprint import tensor_sha256
from interp.progress import Progress

FORMAT = "interp-edit/1"


def weight_hash(w: torch.Tensor) -> str:
    """sha256 of a tensor's bytes (float32 on CPU): identifies the base weights an edit was made for."""
    return tensor_sha256(w)


@dataclass
class LayerDelta:
    layer: int
    left: torch.Tensor  # (d_model, r)
    right: torch.Tensor  # (r, d_mlp)
    base_hash: str  # weight_hash(w_out of `layer`) before this edit

    @property
    def matrix(self) -> torch.Tensor:
        return self.left @ self.right  # (d_model, d_mlp), the change to mlp.w_out

    @property
    def rank(self) -> int:
        return self.left.shape[1]


@dataclass
class Edit:
    model_name: str
    method: str  # "rome" or "memit"
    deltas: list[LayerDelta]
    requests: list[EditRequest]
    info: dict = field(default_factory=dict)  # optimisation diagnostics, parameters
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    _originals: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)
    _applied: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def layers(self) -> list[int]:
        return [d.layer for d in self.deltas]

    @property
    def is_applied(self) -> bool:
        return bool(self._originals)

    # -- apply / undo --------------------------------------------------------------------------------
    def check(self, model) -> None:
        """Refuse (one sentence) an edit made for another model or for other base weights."""
        if model.cfg.name != self.model_name:
            raise EditError(f"This edit was made for {self.model_name}, not {model.cfg.name}; load that model.")
        for d in self.deltas:
            w = model.blocks[d.layer].mlp.w_out
            if tuple(w.shape) != (d.left.shape[0], d.right.shape[1]):
                raise EditError(f"This edit's layer {d.layer} shape does not match {model.cfg.name}.")
            if weight_hash(w) != d.base_hash:
                raise EditError(f"Layer {d.layer}'s W_out differs from the weights this edit was made for "
                                "(apply the edits that preceded it, in order, first).")

    @torch.no_grad()
    def apply(self, model, check: bool = True) -> Edit:
        if self.is_applied:
            raise EditError("This edit is already applied; undo it first.")
        if check:
            self.check(model)
        for d in self.deltas:
            w = model.blocks[d.layer].mlp.w_out
            self._originals[d.layer] = w.detach().clone()
            w.add_(d.matrix.to(device=w.device, dtype=w.dtype))
            self._applied[d.layer] = w.detach().clone()
        return self

    @torch.no_grad()
    def undo(self, model) -> Edit:
        """Restore the original matrices exactly; refuses if later edits on the same layers are still applied."""
        if not self.is_applied:
            raise EditError("This edit is not applied, so there is nothing to undo.")
        for layer, after in self._applied.items():
            if not torch.equal(model.blocks[layer].mlp.w_out, after):
                raise EditError(f"Layer {layer} changed since this edit was applied; undo later edits first (reverse order).")
        for layer, original in self._originals.items():
            model.blocks[layer].mlp.w_out.copy_(original)
        self._originals.clear()
        self._applied.clear()
        return self

    # -- files ----------------------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {"format": FORMAT, "model": self.model_name, "method": self.method, "created": self.created,
                "layers": [{"layer": d.layer, "rank": d.rank, "base_weights_sha256": d.base_hash} for d in self.deltas],
                "requests": [r.to_dict() for r in self.requests], "info": self.info}

    def save(self, path: str | Path) -> Path:
        """Write the factors and metadata; never overwrites an existing file."""
        from safetensors.torch import save_file

        path = Path(path)
        if path.exists():
            raise EditError(f"{path} already exists; choose another file name (edits are never overwritten).")
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for i, d in enumerate(self.deltas):
            tensors[f"{i}.left"] = d.left.detach().float().cpu().contiguous()
            tensors[f"{i}.right"] = d.right.detach().float().cpu().contiguous()
        save_file(tensors, str(path), metadata={"interp_edit": json.dumps(self.metadata(), default=str)})
        return path

    @classmethod
    def load(cls, path: str | Path, model=None) -> Edit:
        """Read an edit file; with `model`, also refuse it if it was made for another model or weights."""
        from safetensors import safe_open

        path = Path(path)
        if not path.exists():
            raise EditError(f"Edit file {path} does not exist.")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["interp_edit"])
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one user-facing sentence
            raise EditError(f"{path} is not an interp edit file ({type(exc).__name__}).") from None
        if meta.get("format") != FORMAT:
            raise EditError(f"{path} is not an interp edit file (format {meta.get('format')!r}).")
        deltas = [LayerDelta(m["layer"], tensors[f"{i}.left"], tensors[f"{i}.right"], m["base_weights_sha256"])
                  for i, m in enumerate(meta["layers"])]
        edit = cls(meta["model"], meta["method"], deltas, [EditRequest(**r) for r in meta["requests"]],
                   meta.get("info", {}), meta["created"])
        if model is not None:
            edit.check(model)
        return edit


def export_model(model, folder: str | Path) -> Path:
    """Write the (edited) model as safetensors + interp_config.json + tokenizer into a new folder;
    `load_model(folder)` reads it back. Refuses a folder that already exists."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if folder.exists():
        raise EditError(f"{folder} already exists; export into a new folder (originals are never overwritten).")
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    (tmp / "interp_config.json").write_text(json.dumps(model.cfg.to_dict(), default=str))
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(str(tmp))
    tmp.rename(folder)
    return folder


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
        # the authors' code: v* = (the bare prompt's value) + delta; u = C^-1 k*; the right vector divided by
        # k_0 . u, so W' k_0 = W k_0 + delta = v* exactly for the bare prompt's key k_0 (contexts[0] is "{}")
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
            "shares": None if shares is None else [round(float(x), 3) for x in shares], "nll_before": val.nll_before, "nll_after": val.nll_after,
            "delta_norm": float(val.delta.norm()), "v0_norm": val.v0_norm}
    edit = Edit(model.cfg.name, "rome", [LayerDelta(layer, left, right, weight_hash(mlp.w_out))], [request], info)
    return edit.apply(model, check=False) if apply else edit


@torch.no_grad()
def check_target(model, request: EditRequest) -> None:
    """Refuse a target the model already gives (greedy continuation of the prompt starts with it)."""
    tgt = target_ids(model, request.target_new)
    out = model.generate(request.text, max_new_tokens=len(tgt), return_text=False)
    if out[0].tolist() == tgt:
        raise EditError(f"The model already answers {request.target_new!r} to {request.text!r}; choose a different target.")


def apply_all(model, edits: Sequence[Edit]) -> None:
    for e in edits:
        e.apply(model)


def undo_all(model, edits: Sequence[Edit]) -> None:
    """Undo a stack of edits in reverse order of application."""
    for e in reversed(list(edits)):
        if e.is_applied:
            e.undo(model)
