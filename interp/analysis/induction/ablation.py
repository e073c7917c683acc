"""Proof by ablation: knock heads out and measure what breaks, against random heads as the control.

A head is called an induction head here only with this evidence beside its attention score. Ablation
(Olsson et al. 2022, Sec. 5; Wang et al. 2022 for mean ablation) replaces the head's output (its hook_z)
by zero or by its mean over the batch; we measure the increase of next-token loss on the second repeat of
``[BOS] + r + r`` (only copying can predict it), and on natural text split into tokens that continue an
earlier bigram (``A B ... A -> B``: what induction predicts) and all other tokens. The control ablates k
heads drawn at random from the same layers as the top-k heads (excluding them), over several seeds, so depth
alone cannot explain the effect.

Every ablated run starts at the first ablated layer from the clean run's cached residual stream, which
saves most of the forward pass when the heads sit in the middle of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.interventions import ablate_heads, capture, head_means, intervene
from interp.model import hook_names
from interp.progress import track

Head = tuple[int, int]


class Ablator:
    """Per-token losses on one batch with any set of heads ablated (zero or mean)."""

    def __init__(self, model, tokens: torch.Tensor):
        self.model, self.tokens = model, tokens
        names = [hook_names.resid_pre(layer) for layer in range(model.cfg.n_layers)]
        store: dict = {}
        with torch.no_grad(), intervene(model, capture(names, store)):
            logits = model(tokens)
        self.resid = [store[n] for n in names]  # per layer (b, p, d_model)
        self.clean = model.next_token_loss(logits, tokens, per_token=True)  # (b, p-1)
        self.means = head_means(model, tokens)  # {layer: (h, d_head)}

    @torch.no_grad()
    def loss(self, heads: list[Head], mode: str = "zero") -> torch.Tensor:
        """(b, p-1) per-token loss with `heads` ablated."""
        if not heads:
            return self.clean
        start = min(layer for layer, _ in heads)
        hooks = ablate_heads(heads, mode=mode, means=self.means)
        with intervene(self.model, hooks):
            logits = self.model(self.resid[start], start_at_layer=start)
        return self.model.next_token_loss(logits, self.tokens, per_token=True)

    def increase(self, heads: list[Head], mode: str, mask: torch.Tensor) -> float:
        """Mean loss increase over the tokens selected by `mask` (b, p-1)."""
        return float((self.loss(heads, mode) - self.clean)[mask].mean())

    def increase_per_sequence(self, heads: list[Head], mode: str, mask: torch.Tensor) -> list[float]:
        """The loss increase of each sequence (row), averaged over its tokens selected by `mask`."""
        d = (self.loss(heads, mode) - self.clean) * mask
        return (d.sum(1) / mask.sum(1).clamp(min=1)).tolist()


def second_repeat_mask(tokens: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(b, 2L) predictions of second-repeat tokens L+2..2L (the first one, r_0 again, is not copyable)."""
    mask = torch.zeros(tokens.shape[0], tokens.shape[1] - 1, dtype=torch.bool, device=tokens.device)
    mask[:, seq_len + 1 :] = True
    return mask


def random_heads_like(top: list[Head], n_layers: int, n_heads: int, seed: int) -> list[Head]:
    """One random head per top head, from the same layer, never a top head; a layer whose heads are all in
    `top` borrows from the nearest layer that has a free head."""
    gen = torch.Generator().manual_seed(seed)
    taken = set(top)
    out: list[Head] = []
    for layer, _ in top:
        for cand_layer in sorted(range(n_layers), key=lambda c: (abs(c - layer), c)):
            free = [h for h in range(n_heads) if (cand_layer, h) not in taken]
            if free:
                pick = (cand_layer, free[int(torch.randint(len(free), (1,), generator=gen))])
                taken.add(pick)
                out.append(pick)
                break
    return out


@dataclass
class AblationSummary:
    k: int
    top_heads: list[Head]
    top: dict[str, float]  # mode -> loss increase on the second repeat
    top_per_sequence: dict[str, list[float]]  # mode -> the increase of each ablation-batch sequence
    random: dict[str, list[float]]  # mode -> one increase per seed
    random_heads: list[list[Head]]
    per_head: dict[Head, float]  # zero-ablation increase of each head alone (the top heads only)


def ablation_study(ablator: Ablator, top: list[Head], seq_len: int, seeds: int, seed: int,
                   progress=None) -> AblationSummary:
    """Top-k vs random heads (same layers), zero and mean ablation, on the second repeat of the ablator's batch
    (which should not be the batch the top heads were selected on)."""
    mask = second_repeat_mask(ablator.tokens, seq_len)
    cfg = ablator.model.cfg
    draws = [random_heads_like(top, cfg.n_layers, cfg.n_heads, seed + 1000 * s) for s in range(seeds)]
    jobs = [("top", m, top) for m in ("zero", "mean")] + [("random", m, d) for d in draws for m in ("zero", "mean")]
    jobs += [("single", "zero", [h]) for h in top]
    result = AblationSummary(len(top), top, {}, {}, {"zero": [], "mean": []}, draws, {})
    for kind, mode, heads in track(progress, jobs, "ablations"):
        inc = ablator.increase(heads, mode, mask)
        if kind == "top":
            result.top[mode] = inc
            result.top_per_sequence[mode] = ablator.increase_per_sequence(heads, mode, mask)
        elif kind == "random":
            result.random[mode].append(inc)
        else:
            result.per_head[heads[0]] = inc
    return result


@dataclass
class TextCheck:
    source: str  # "generated" or the file name
    n_bigram: int
    n_other: int
    top_bigram: float  # mean loss increase on bigram-continuing tokens, top-k ablated (zero)
    top_other: float
    random_bigram: float  # same with random heads, mean over seeds
    random_other: float


def text_check(model, tokens: torch.Tensor, top: list[Head], draws: list[list[Head]], source: str,
               mode: str = "mean") -> TextCheck:
    """Natural text: does ablating the top heads hurt bigram-continuing tokens more than other tokens?"""
    from interp.analysis.induction.sequences import bigram_continuation_mask

    ab = Ablator(model, tokens)
    bigram = bigram_continuation_mask(tokens)  # (b, p-1)
    other = ~bigram
    other[:, 0] = False  # predicting from BOS alone says nothing about context
    d_top = ab.loss(top, mode) - ab.clean
    d_rand = torch.stack([ab.loss(d, mode) - ab.clean for d in draws])  # (seeds, b, p-1)
    return TextCheck(source, int(bigram.sum()), int(other.sum()), float(d_top[bigram].mean()),
                     float(d_top[other].mean()), float(d_rand[:, bigram].mean()), float(d_rand[:, other].mean()))
