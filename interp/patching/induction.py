"""The induction circuit by path patching: which earlier heads feed the induction heads' keys.

An induction head at a token of the second copy of a repeated random sequence attends to the key just after
the earlier copy of that token; that key can only know "my previous token was X" if an earlier head wrote
it there (a previous-token head: K-composition, Elhage et al. 2021; Olsson et al. 2022). Path patching
tests this directly: for every earlier head (the sender), its output is taken from a run on fresh random
tokens (no repeat) only along its path into the induction heads' key inputs, everything else seeing the
repeated run, and the loss on the second copy is measured. Senders whose path raises the loss are the heads
that feed the induction heads' keys. The control is the same measurement for every other sender: the
found heads must stand out from that distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from interp.patching.path import path_patch
from interp.patching.result import PatchResult


def repeated_tokens(model, seq_len: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, corrupted): [BOS?] + A + A, and [BOS?] + A' + B' of fresh random tokens (same length)."""
    gen = torch.Generator().manual_seed(seed)
    low, high = min(100, model.cfg.d_vocab // 4), model.cfg.d_vocab - min(100, model.cfg.d_vocab // 4)
    first = torch.randint(low, high, (n, seq_len), generator=gen)
    fresh = torch.randint(low, high, (n, 2 * seq_len), generator=gen)
    clean, corrupted = torch.cat([first, first], 1), fresh
    bos = model.cfg.bos_token_id
    if bos is not None and model.cfg.default_prepend_bos:
        col = torch.full((n, 1), bos)
        clean, corrupted = torch.cat([col, clean], 1), torch.cat([col, corrupted], 1)
    return clean.to(model.device), corrupted.to(model.device)


def second_copy_logprob(clean: torch.Tensor, seq_len: int):
    """Metric: mean log-probability of the correct next token over the second copy (higher = better copying)."""
    targets = clean[:, -seq_len + 1:]  # tokens predicted from inside the second copy

    def metric(logits: torch.Tensor) -> torch.Tensor:
        rows = logits.shape[0]
        t = targets.repeat(rows // targets.shape[0], 1)
        logp = F.log_softmax(logits[:, -seq_len:-1].to(torch.promote_types(logits.dtype, torch.float32)), -1)
        return logp.gather(-1, t[..., None])[..., 0].mean(-1)

    return metric


@dataclass
class InductionPaths:
    """The senders ranked by how much their path into the induction heads' keys lowers the copy score."""

    receivers: list[tuple[int, int]]
    result: PatchResult  # scores (sender, pairs)
    effects: torch.Tensor  # (sender,) clean metric - patched metric, mean over pairs (> 0: the path matters)
    senders: list[tuple[int, int]]

    def ranked(self) -> list[tuple[tuple[int, int], float]]:
        order = torch.argsort(self.effects, descending=True)
        return [(self.senders[i], float(self.effects[i])) for i in order]

    def control(self, top: int) -> tuple[float, float]:
        """Mean and standard deviation of the effect over the senders outside the top `top`."""
        rest = torch.argsort(self.effects, descending=True)[top:]
        values = self.effects[rest]
        return float(values.mean()), float(values.std())


@torch.no_grad()
def induction_paths(model, receivers: Sequence[tuple[int, int]], seq_len: int = 20, n: int = 4, seed: int = 0,
                    which: str = "k") -> InductionPaths:
    """Path-patch every head in the layers before the last receiver into the receivers' key (or query /
    value) inputs (a sender reaches only the receivers in later layers)."""
    clean, corrupted = repeated_tokens(model, seq_len, n, seed)
    last = max(layer for layer, _ in receivers)
    senders = [(layer, head) for layer in range(last) for head in range(model.cfg.n_heads)]
    metric = second_copy_logprob(clean, seq_len)
    result = path_patch(model, clean, corrupted, metric, senders, [(l, h, which) for l, h in receivers])
    effects = result.clean.mean() - result.scores.mean(-1)
    return InductionPaths(list(receivers), result, effects, senders)
