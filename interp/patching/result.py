"""What a patching method returns: scores over a grid of cells, per pair, with the two reference runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class PatchResult:
    """scores: (*grid, pairs), the metric with each cell patched (or its attribution estimate).

    dims name the grid axes ("layer", "pos", "head", "sender"); clean / corrupted: (pairs,) metric of the
    unpatched runs. `normalized()` maps the corrupted run to 0 and the clean run to 1 (for denoising)."""

    kind: str
    method: str
    dims: tuple[str, ...]
    scores: torch.Tensor
    clean: torch.Tensor
    corrupted: torch.Tensor
    direction: str = "denoise"
    labels: dict[str, list] = field(default_factory=dict)  # optional names of grid entries (tokens, senders)

    def mean(self) -> torch.Tensor:
        return self.scores.mean(-1)

    def normalized(self) -> torch.Tensor:
        """(mean patched - mean corrupted) / (mean clean - mean corrupted); for noising the roles swap."""
        lo, hi = self.corrupted.mean(), self.clean.mean()
        if self.direction == "noise":
            lo, hi = hi, lo
        return (self.mean() - lo) / (hi - lo)

    def to_frame(self):
        """Tidy rows: one per cell and pair, with the raw score and the normalised mean of its cell."""
        import itertools

        import pandas as pd

        norm = self.normalized()
        rows = []
        for cell in itertools.product(*(range(n) for n in self.scores.shape[:-1])):
            for pair in range(self.scores.shape[-1]):
                row = dict(zip(self.dims, cell))
                for dim, i in zip(self.dims, cell):
                    if dim in self.labels:
                        row[f"{dim}_label"] = self.labels[dim][i]
                row.update(pair=pair, score=float(self.scores[cell + (pair,)]), normalized=float(norm[cell]))
                rows.append(row)
        return pd.DataFrame(rows)
