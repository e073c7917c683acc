"""Attribution patching (Nanda 2023): the first-order estimate of every activation-patching cell at once.

For a cell with activation a in the base run and a' in the source run, patching changes the metric by
about (a' - a) . dmetric/da, the gradient taken in the base run. One forward + backward of the base run
and one forward of the source run give every cell of every layer; the estimate is exact for a metric
linear in the activation and degrades with the nonlinearity between them (attention patterns, norms).
Scores are reported as the estimated patched metric (base metric + estimate), on the same scale as
`activation_patch`, so the two compare cell by cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interp.patching.activation import KINDS, as_pairs, check_kind
from interp.patching.metrics import Metric
from interp.patching.result import PatchResult


def attribution_patch(model, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric, kind: str = "resid",
                      direction: str = "denoise", layers: Sequence[int] | None = None) -> PatchResult:
    check_kind(kind)
    clean, corrupted = as_pairs(clean, corrupted)
    base, source = (corrupted, clean) if direction == "denoise" else (clean, corrupted)
    layers = list(range(model.cfg.n_layers)) if layers is None else list(layers)
    name_of = KINDS[kind][0]
    names = [name_of(l) for l in layers]
    with torch.no_grad():
        _, source_cache = model.run_with_cache(source, names_filter=names)
        other = model(source)
    acts: dict[str, torch.Tensor] = {}

    def keep(act, hook):
        act.retain_grad()
        acts[hook.name] = act
        return act

    with torch.enable_grad(), model.hooks(fwd_hooks=[(name, keep) for name in names]):
        base_metric = metric(model(base))
        base_metric.sum().backward()  # rows are independent pairs: each row's gradient is its own
    out = []
    for name in names:
        delta = (source_cache[name] - acts[name].detach()) * acts[name].grad  # (n, p, ...)
        out.append(_sum_to_cells(delta.float(), kind))
    model.zero_grad(set_to_none=True)
    est = torch.stack(out)  # (layer, *cells, n)
    scores = est + base_metric.detach().float().cpu().view(*([1] * (est.dim() - 1)), -1)
    base_m, other_m = base_metric.detach().float().cpu(), metric(other).float().cpu()
    clean_m, corrupted_m = (other_m, base_m) if direction == "denoise" else (base_m, other_m)
    return PatchResult(kind, "attribution", KINDS[kind][1], scores, clean_m, corrupted_m, direction,
                       labels={"layer": layers})


def _sum_to_cells(delta: torch.Tensor, kind: str) -> torch.Tensor:
    """(n, p, d) or (n, p, h, d) contributions -> the kind's cells with pairs last."""
    if kind in ("resid", "attn", "mlp"):
        return delta.sum(-1).T.cpu()  # (p, n)
    if kind == "heads":
        return delta.sum((1, 3)).T.cpu()  # (h, n)
    return delta.sum(-1).permute(1, 2, 0).cpu()  # (p, h, n)
