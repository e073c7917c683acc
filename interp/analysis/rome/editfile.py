"""Edits as objects and as files: apply all-or-nothing, undo bit for bit, save, load, export.

An :class:`Edit` is a list of low-rank factors per layer (rank 1 for ROME, rank n over several layers for
MEMIT). Applying keeps a copy of each original matrix, so undo restores it exactly (never by
subtraction); edits stack and undo in reverse order.

A saved edit is a safetensors file of the factors with JSON metadata: model, method, layers (with the
sha256 of each layer's W_out before the edit), requests, date, and ``factors_sha256``, a hash over the
factors themselves. A file is checked completely before it can touch a weight (`validate`): every
metadata field and its type, at least one request, each layer once and inside the model, each factor
2-D float32 of the model's shape with the rank the metadata says, finite, with a bounded norm, and the
factors' hash. `Edit.apply` checks everything first and applies all layers or none. Saving writes a new
temporary file (``O_EXCL``) and links it into place, so an existing file, or a symlink, at the target is
never written through; `export_model` writes into a folder it creates and removes only that.

(Kept importable from :mod:`interp.analysis.rome.edit`, where ROME's own computation lives.)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from interp.analysis.rome.key import EditRequest
from interp.errors import EditError, InterpError
from interp.fingerprint import tensor_sha256

FORMAT = "interp-edit/2"  # 2: factors_sha256 in the metadata
READABLE = ("interp-edit/1", FORMAT)
METHODS = ("rome", "memit", "alphaedit", "ft", "ft-l")
MAX_LAYERS = 4096  # no model has more; a file claiming more is not an edit
# A factor pair whose product could move W_out by more than this many times W_out's own norm is refused
# (real ROME/MEMIT updates are a small fraction of it); without a model, an absolute bound.
NORM_RATIO = 100.0
ABSOLUTE_NORM = 1e6
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def weight_hash(w: torch.Tensor) -> str:
    """sha256 of a tensor's bytes (float32 on CPU): identifies the base weights an edit was made for."""
    return tensor_sha256(w)


def factors_hash(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every factor: its name, shape and float32 bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().float().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


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
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
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
        """Refuse (one sentence) an edit made for another model or for other base weights, or whose factors do
        not fit this model (layer range, shapes, finite values, norm)."""
        if model.cfg.name != self.model_name:
            raise EditError(f"This edit was made for {self.model_name}, not {model.cfg.name}; load that model.")
        seen = set()
        for d in self.deltas:
            if not isinstance(d.layer, int) or not 0 <= d.layer < model.cfg.n_layers:
                raise EditError(f"This edit changes layer {d.layer}, which {model.cfg.name} does not have "
                                f"(layers 0-{model.cfg.n_layers - 1}).")
            if d.layer in seen:
                raise EditError(f"This edit lists layer {d.layer} twice.")
            seen.add(d.layer)
            w = model.blocks[d.layer].mlp.w_out
            _check_factors(d.left, d.right, (w.shape[0], w.shape[1]), f"layer {d.layer}", w)
            if weight_hash(w) != d.base_hash:
                raise EditError(f"Layer {d.layer}'s W_out differs from the weights this edit was made for "
                                "(apply the edits that preceded it, in order, first).")

    @torch.no_grad()
    def apply(self, model, check: bool = True) -> Edit:
        """Add the factors to the model's W_out: every layer checked first, then all applied or none."""
        if self.is_applied:
            raise EditError("This edit is already applied; undo it first.")
        if check:
            self.check(model)
        try:
            for d in self.deltas:
                w = model.blocks[d.layer].mlp.w_out
                self._originals[d.layer] = w.detach().clone()
                w.add_(d.matrix.to(device=w.device, dtype=w.dtype))
                self._applied[d.layer] = w.detach().clone()
        except BaseException:
            for layer, original in self._originals.items():  # none: put back what was already changed
                model.blocks[layer].mlp.w_out.copy_(original)
            self._originals.clear()
            self._applied.clear()
            raise
        return self

    @torch.no_grad()
    def undo(self, model) -> Edit:
        """Restore the original matrices exactly; refuses if later edits on the same layers are still applied."""
        if not self.is_applied:
            raise EditError("This edit is not applied, so there is nothing to undo.")
        for layer, after in self._applied.items():
            if not torch.equal(model.blocks[layer].mlp.w_out, after):
                raise EditError(
                    f"Layer {layer} changed since this edit was applied; undo later edits first (reverse order).")
        for layer, original in self._originals.items():
            model.blocks[layer].mlp.w_out.copy_(original)
        self._originals.clear()
        self._applied.clear()
        return self

    # -- files ----------------------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for i, d in enumerate(self.deltas):
            out[f"{i}.left"] = d.left.detach().float().cpu().contiguous()
            out[f"{i}.right"] = d.right.detach().float().cpu().contiguous()
        return out

    def metadata(self, tensors: dict[str, torch.Tensor] | None = None) -> dict:
        return {"format": FORMAT, "model": self.model_name, "method": self.method, "created": self.created,
                "layers": [{"layer": d.layer, "rank": d.rank, "base_weights_sha256": d.base_hash} for d in self.deltas],
                "requests": [r.to_dict() for r in self.requests], "info": self.info,
                "factors_sha256": factors_hash(tensors if tensors is not None else self.tensors())}

    def save(self, path: str | Path) -> Path:
        """Write the factors and metadata into a new file: never overwrites a file, never writes through a
        symlink (a temporary file created with O_EXCL, then linked to the name, which fails if it exists)."""
        from safetensors.torch import save

        path = Path(path)
        if path.exists() or path.is_symlink():
            raise EditError(f"{path} already exists; choose another file name (edits are never overwritten).")
        tensors = self.tensors()
        data = save(tensors, metadata={"interp_edit": json.dumps(self.metadata(tensors), default=str)})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_new(path, data)
        except FileExistsError:
            raise EditError(f"{path} already exists; choose another file name (edits are never overwritten).") from None
        except OSError as exc:
            raise EditError(f"The edit cannot be written to {path}: {exc.strerror or exc}.") from None
        return path

    @classmethod
    def load(cls, path: str | Path, model=None) -> Edit:
        """Read and check an edit file (see `validate`); with `model`, also refuse it if it was made for another
        model or weights, or does not fit it."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise EditError(f"Edit file {path} does not exist.")
        try:
            with safe_open(str(path), framework="pt") as f:
                raw = (f.metadata() or {})["interp_edit"]
                tensors = {k: f.get_tensor(k) for k in f.keys()}
            meta = json.loads(raw)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one user-facing sentence
            raise EditError(f"{path} is not an interp edit file ({type(exc).__name__}).") from None
        edit = from_parts(meta, tensors, path)
        if model is not None:
            edit.check(model)
        return edit


def _write_new(path: Path, data: bytes) -> None:
    """Write bytes to a new file: a temporary file (O_EXCL) in the same folder, then hard-linked to `path`
    (atomic, fails if `path` exists, even as a dangling symlink); where hard links are not supported, the
    file is created with O_EXCL | O_NOFOLLOW and written."""
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            out = os.open(path, flags, 0o644)
            try:
                with os.fdopen(out, "wb") as f:
                    f.write(data)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
    finally:
        Path(tmp).unlink(missing_ok=True)


def _bad(path, problem: str) -> EditError:
    return EditError(f"{path} is not a valid interp edit file: {problem}.")


def _check_factors(left, right, shape: tuple[int, int] | None, where: str, w: torch.Tensor | None = None,
                   path=None) -> None:
    """Factors are 2-D, of matching rank (and of the model's shape), finite, and of bounded norm."""
    def fail(problem: str) -> EditError:
        return _bad(path, f"{where}: {problem}") if path is not None else EditError(f"This edit's {where}: {problem}.")

    for name, t in (("left", left), ("right", right)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2:
            raise fail(f"the {name} factor must be a 2-D matrix")
        if not t.is_floating_point():
            raise fail(f"the {name} factor must hold floating-point numbers")
        if t.numel() == 0:
            raise fail(f"the {name} factor is empty")
    if left.shape[1] != right.shape[0]:
        raise fail(f"the factors' ranks differ ({left.shape[1]} and {right.shape[0]})")
    if shape is not None and (left.shape[0], right.shape[1]) != tuple(shape):
        raise fail(f"the factors make a {left.shape[0]}x{right.shape[1]} change, but W_out is {shape[0]}x{shape[1]}")
    if not (torch.isfinite(left).all() and torch.isfinite(right).all()):
        raise fail("a factor holds NaN or infinite values")
    bound = ABSOLUTE_NORM if w is None else NORM_RATIO * float(w.detach().float().norm())
    size = float(left.double().norm()) * float(right.double().norm())  # >= the change's Frobenius norm
    if not math.isfinite(size) or size > bound:
        raise fail(f"the change is too large to be an edit (norm bound {size:.3g} > {bound:.3g})")


def validate(meta: object, tensors: dict[str, torch.Tensor], path: object = "the edit") -> None:
    """Check an edit file's metadata and factors completely (one sentence naming the problem)."""
    if not isinstance(meta, dict):
        raise _bad(path, "its metadata is not a JSON object")
    if meta.get("format") not in READABLE:
        raise EditError(f"{path} is not an interp edit file (format {meta.get('format')!r}).")
    required = {"model": str, "method": str, "created": str, "layers": list, "requests": list}
    for key, kind in required.items():
        if not isinstance(meta.get(key), kind):
            raise _bad(path, f"metadata field '{key}' is missing or not a {'list' if kind is list else 'string'}")
    if not isinstance(meta.get("info", {}), dict):
        raise _bad(path, "metadata field 'info' is not an object")
    if meta["method"] not in METHODS:
        raise _bad(path, f"method {meta['method']!r} is not one of {', '.join(METHODS)}")
    if not meta["requests"]:
        raise _bad(path, "it holds no requests (the facts it rewrites)")
    for i, r in enumerate(meta["requests"]):
        if not isinstance(r, dict) or not all(isinstance(r.get(k), str) for k in ("prompt", "subject", "target_new")):
            raise _bad(path, f"request {i} needs the strings 'prompt', 'subject' and 'target_new'")
        if unknown := set(r) - {"prompt", "subject", "target_new", "target_true", "case_id"}:
            raise _bad(path, f"request {i} has unknown fields {sorted(unknown)}")
        if r.get("target_true") is not None and not isinstance(r["target_true"], str):
            raise _bad(path, f"request {i}: 'target_true' must be a string")
        case_id = r.get("case_id")
        if case_id is not None and (not isinstance(case_id, (int, str)) or isinstance(case_id, bool)):
            raise _bad(path, f"request {i}: 'case_id' must be a number or a string")
    layers = meta["layers"]
    if not layers:
        raise _bad(path, "it changes no layer")
    seen = set()
    for i, m in enumerate(layers):
        if not isinstance(m, dict):
            raise _bad(path, f"layer entry {i} is not an object")
        layer, rank, base = m.get("layer"), m.get("rank"), m.get("base_weights_sha256")
        if not isinstance(layer, int) or isinstance(layer, bool) or not 0 <= layer < MAX_LAYERS:
            raise _bad(path, f"layer entry {i} has no valid layer number ({layer!r})")
        if layer in seen:
            raise _bad(path, f"layer {layer} is listed twice")
        seen.add(layer)
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
            raise _bad(path, f"layer {layer} has no valid rank ({rank!r})")
        if not isinstance(base, str) or not _HEX64.match(base):
            raise _bad(path, f"layer {layer} has no valid base_weights_sha256")
    expected = {f"{i}.{side}" for i in range(len(layers)) for side in ("left", "right")}
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise _bad(path, f"factor {missing[0]} is missing" if missing else f"it holds an unexpected tensor {extra[0]}")
    for i, m in enumerate(layers):
        left, right = tensors[f"{i}.left"], tensors[f"{i}.right"]
        _check_factors(left, right, None, f"layer {m['layer']}", path=path)
        if left.shape[1] != m["rank"]:
            raise _bad(path,
                       f"layer {m['layer']}: the factors have rank {left.shape[1]}, the metadata says {m['rank']}")
    if meta["format"] != "interp-edit/1" or "factors_sha256" in meta:
        if meta.get("factors_sha256") != factors_hash(tensors):
            raise _bad(path, "its factors do not match their recorded sha256 (the file was changed after it was saved)")


def from_parts(meta: object, tensors: dict[str, torch.Tensor], path: object = "the edit") -> Edit:
    """An Edit from a file's metadata and tensors, after `validate`."""
    validate(meta, tensors, path)
    deltas = [LayerDelta(m["layer"], tensors[f"{i}.left"].float(), tensors[f"{i}.right"].float(),
                         m["base_weights_sha256"])
              for i, m in enumerate(meta["layers"])]
    try:
        requests = [EditRequest(**r) for r in meta["requests"]]
    except InterpError as exc:
        raise _bad(path, f"a request is not valid ({str(exc).rstrip('.')})") from None
    return Edit(meta["model"], meta["method"], deltas, requests, meta.get("info", {}), meta["created"])


def export_model(model, folder: str | Path) -> Path:
    """Write the (edited) model as safetensors + interp_config.json + tokenizer into a new folder;
    `load_model(folder)` reads it back. Refuses a folder (or symlink) that already exists; writes into a
    temporary folder it creates next to it, renamed into place when complete, and on failure removes only that."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if folder.exists() or folder.is_symlink():
        raise EditError(f"{folder} already exists; export into a new folder (originals are never overwritten).")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    except OSError as exc:
        raise EditError(f"The model cannot be exported to {folder}: {exc.strerror or exc}.") from None
    try:
        os.chmod(tmp, 0o755)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "interp_config.json").write_text(json.dumps(model.cfg.to_dict(), default=str))
        if model.tokenizer is not None:
            model.tokenizer.save_pretrained(str(tmp))
        if folder.exists() or folder.is_symlink():
            raise EditError(f"{folder} appeared while exporting; the export was not written there.")
        os.rename(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EditError(f"The model cannot be exported to {folder}: {exc.strerror or exc}.") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
