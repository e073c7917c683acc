"""Circuit tools: activation patching, attribution patching, path patching and direct logit attribution.

All four answer "which component carries the difference between a clean and a corrupted prompt" at a
different price and with a different meaning:

- activation patching (`activation_patch`) swaps one activation between the runs and measures the metric
  again: exact, one forward per cell (batched);
- attribution patching (`attribution_patch`, Nanda 2023) approximates every cell at once to first order,
  gradient x activation difference, from one forward and one backward per run;
- path patching (`path_patch`, Wang et al. 2022) swaps a sender's output only along its path into a
  receiver (a head's query, key or value input, or the logits), the rest of the model seeing the clean run;
- direct logit attribution (`direct_logit_attribution`) splits a logit difference into each head's and
  MLP's direct contribution through the final norm (its scale frozen).

Runs are pairs of equally long token sequences; a metric maps logits (rows, pos, vocab) to one number per
row (`metrics.py`). Results keep every pair and come with tidy DataFrames.
"""

from interp.patching.activation import activation_patch
from interp.patching.attribution import attribution_patch
from interp.patching.dla import direct_logit_attribution
from interp.patching.metrics import answer_logprob, answer_prob, logit_diff
from interp.patching.path import path_patch
from interp.patching.result import PatchResult

__all__ = ["PatchResult", "activation_patch", "answer_logprob", "answer_prob", "attribution_patch",
           "direct_logit_attribution", "logit_diff", "path_patch"]
