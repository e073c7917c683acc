"""Attention-pattern scores of every head, from one batched forward pass on ``[BOS] + r + r``.

For a second-repeat query position i (L+1 <= i <= 2L, L = len(r)):
- induction score: attention from i to i - L + 1, the token right after the earlier occurrence of token i.
  This is Olsson et al.'s prefix-matching score ("attend to the token that followed the previous copy of
  me"); ARENA calls a head induction-like above 0.4. Mean over batch and second-repeat positions, in [0, 1].
- duplicate-token score: attention from i to i - L, the earlier occurrence of the same token.
Previous-token score: attention from every position i >= 1 (past BOS) to i - 1.

The scale differs from TransformerLens' head detector ("mul" divides the target cells by all attention over
all rows, so a perfect induction head scores about 0.5 there); see `tl_mul_score`.

Patterns are reduced inside the hooks, layer by layer, so no (layer, batch, head, q, k) cache is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.model import hook_names


@dataclass
class PatternScores:
    induction: torch.Tensor  # (n_layers, n_heads)
    prev_token: torch.Tensor  # (n_layers, n_heads)
    duplicate: torch.Tensor  # (n_layers, n_heads)
    loss_by_position: torch.Tensor  # (2L,) mean next-token loss predicting position t + 1 from t
    example_patterns: torch.Tensor  # (n_layers, n_heads, q, k) of batch row 0, kept only if asked
    seq_len: int

    @property
    def loss_first(self) -> float:
        """Mean loss on the first repeat (predicting tokens 2..L; token 1 has no context but BOS)."""
        return float(self.loss_by_position[1 : self.seq_len].mean())

    @property
    def loss_second(self) -> float:
        """Mean loss on the second repeat (predicting tokens L+2..2L, all copyable from the first)."""
        return float(self.loss_by_position[self.seq_len + 1 :].mean())


def score_indices(seq_len: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(query positions, key positions) pairs whose attention each score averages."""
    second = torch.arange(seq_len + 1, 2 * seq_len + 1)  # second-repeat query positions
    allq = torch.arange(1, 2 * seq_len + 1)
    return {
        "induction": (second, second - seq_len + 1),
        "duplicate": (second, second - seq_len),
        "prev_token": (allq, allq - 1),
    }


def mean_attention(pattern: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """pattern (b, h, q, k) -> (h,): mean over batch and the given (query, key) pairs."""
    return pattern[:, :, q, k].float().mean(dim=(0, 2))  # pattern[:, :, q, k] is (b, h, n_pairs)


@torch.no_grad()
def pattern_scores(model, tokens: torch.Tensor, seq_len: int, keep_example: bool = True,
                   extra_hooks: list | None = None) -> PatternScores:
    """All heads' induction / previous-token / duplicate scores and the per-position loss, in one pass.
    `extra_hooks` (name, fn) run in the same pass (e.g. to capture what other measures need)."""
    cfg = model.cfg
    idx = {name: (q.to(tokens.device), k.to(tokens.device)) for name, (q, k) in score_indices(seq_len).items()}
    out = {name: torch.zeros(cfg.n_layers, cfg.n_heads) for name in idx}
    examples: list[torch.Tensor] = []

    def make_hook(layer: int):
        def hook(pattern: torch.Tensor, hook) -> None:  # (b, h, q, k)
            for name, (q, k) in idx.items():
                out[name][layer] = mean_attention(pattern, q, k).cpu()
            if keep_example:
                examples.append(pattern[0].detach().float().cpu())  # (h, q, k)

        return hook

    hooks = [(hook_names.pattern(layer), make_hook(layer)) for layer in range(cfg.n_layers)]
    with model.hooks(fwd_hooks=hooks + list(extra_hooks or [])):
        logits = model(tokens)
    nll = model.next_token_loss(logits, tokens, per_token=True)  # (b, 2L)
    example = torch.stack(examples) if keep_example else torch.empty(0)  # (layer, h, q, k)
    return PatternScores(out["induction"], out["prev_token"], out["duplicate"], nll.mean(0).cpu(), example, seq_len)


def tl_mul_score(pattern: torch.Tensor, detection: torch.Tensor) -> torch.Tensor:
    """TransformerLens head_detector's "mul" measure on our patterns: (h, q, k) x (q, k) -> (h,).
    Sum of attention on the detection cells over all attention, over all rows (so ~0.5 is perfect on r + r)."""
    return (pattern * detection).sum((-1, -2)) / pattern.sum((-1, -2))


def tl_induction_detection_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """(p, p) TransformerLens' induction detection pattern for one row: 1 at (i, j) when token j-1 equals
    token i (j - 1 < i), i.e. the key right after an earlier copy of the query token."""
    p = tokens.shape[-1]
    dup = (tokens[:, None] == tokens[None, :]).float().tril(-1)  # (p, p) earlier duplicates
    shifted = torch.zeros(p, p)
    shifted[:, 1:] = dup[:, :-1]  # key j marks the token after a duplicate at j-1
    return shifted.tril()
