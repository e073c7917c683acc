"""Activation patching: run one input, swap in one activation from the other input's run, measure again.

Denoising (the default, as TransformerLens' patching functions) runs the corrupted prompt and restores
one clean activation: the cells that bring the clean answer back are the ones that carry it. Noising runs
the clean prompt and breaks one activation with the corrupted one.

Grids (kind):
    resid      the residual stream entering each layer, per position      (layer, pos)
    attn       each layer's attention output, per position                 (layer, pos)
    mlp        each layer's MLP output, per position                       (layer, pos)
    heads      each head's output (hook_z), all positions at once          (layer, head)
    heads_pos  each head's output at one position                          (layer, pos, head)

Batched without changing the answer: every cell of a layer starts from the base run's residual stream
entering that layer (nothing before it changes), and many cells share one forward, one row per cell and
pair. `tests/patching` checks every grid against a loop of single hooks on full forwards.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from interp.model import hook_names
from interp.patching.metrics import Metric
from interp.patching.result import PatchResult

KINDS = {
    "resid": (hook_names.resid_pre, ("layer", "pos")),
    "attn": (hook_names.attn_out, ("layer", "pos")),
    "mlp": (hook_names.mlp_out, ("layer", "pos")),
    "heads": (hook_names.z, ("layer", "head")),
    "heads_pos": (hook_names.z, ("layer", "pos", "head")),
}


def as_pairs(clean: torch.Tensor, corrupted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Token tensors (p,) or (n, p) of equal shape -> (n, p) each."""
    clean, corrupted = torch.atleast_2d(clean), torch.atleast_2d(corrupted)
    if clean.shape != corrupted.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and corrupted {tuple(corrupted.shape)} must have one shape "
                         "(pad the prompts to the same length)")
    return clean, corrupted


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def _cells(kind: str, n_pos: int, n_heads: int) -> list[tuple[int, ...]]:
    axes = {"pos": range(n_pos), "head": range(n_heads)}
    return list(itertools.product(*(axes[d] for d in KINDS[kind][1][1:])))


def _write(act: torch.Tensor, rows: slice, src: torch.Tensor, kind: str, cell: tuple[int, ...]) -> None:
    """Copy the source's value of `cell` into `rows` of act (in place)."""
    if kind in ("resid", "attn", "mlp"):
        act[rows, cell[0]] = src[:, cell[0]]
    elif kind == "heads":
        act[rows, :, cell[0]] = src[:, :, cell[0]]
    else:
        act[rows, cell[0], cell[1]] = src[:, cell[0], cell[1]]


@torch.no_grad()
def activation_patch(model, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric, kind: str = "resid",
                     direction: str = "denoise", layers: Sequence[int] | None = None,
                     rows_per_forward: int = 32) -> PatchResult:
    """The metric with each cell of `kind` patched; scores (layer, ..., pairs)."""
    check_kind(kind)
    if direction not in ("denoise", "noise"):
        raise ValueError(f"direction must be 'denoise' or 'noise', got {direction!r}")
    clean, corrupted = as_pairs(clean, corrupted)
    n, p = clean.shape
    base, source = (corrupted, clean) if direction == "denoise" else (clean, corrupted)
    layers = list(range(model.cfg.n_layers)) if layers is None else list(layers)
    name_of = KINDS[kind][0]
    _, base_cache = model.run_with_cache(base, names_filter=[hook_names.resid_pre(l) for l in layers])
    _, source_cache = model.run_with_cache(source, names_filter=[name_of(l) for l in layers])
    cells = _cells(kind, p, model.cfg.n_heads)
    scores = torch.empty(len(layers), len(cells), n)
    per_forward = max(1, rows_per_forward // n)
    for li, layer in enumerate(layers):
        start, src = base_cache[hook_names.resid_pre(layer)], source_cache[name_of(layer)]
        for first in range(0, len(cells), per_forward):
            chunk = cells[first:first + per_forward]

            def patch(act, hook, chunk=chunk, src=src):
                act = act.clone()
                for c, cell in enumerate(chunk):
                    _write(act, slice(c * n, (c + 1) * n), src.to(act.dtype), kind, cell)
                return act

            with model.hooks(fwd_hooks=[(name_of(layer), patch)]):
                logits = model(start.repeat(len(chunk), 1, 1), start_at_layer=layer)
            scores[li, first:first + len(chunk)] = metric(logits).view(len(chunk), n).float().cpu()
    grid = scores.view(len(layers), *(p if d == "pos" else model.cfg.n_heads for d in KINDS[kind][1][1:]), n)
    clean_m, corrupted_m = metric(model(clean)).float().cpu(), metric(model(corrupted)).float().cpu()
    return PatchResult(kind, "activation", KINDS[kind][1], grid, clean_m, corrupted_m, direction,
                       labels={"layer": layers})
