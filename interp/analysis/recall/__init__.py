"""Lost in the middle (Liu et al., TACL 2024): is an item recalled worse in the middle of a long prompt than at
its start and end, and what do the attention heads do differently there?

    result = run_lost_in_middle(model, RecallParams(task="kv-words", n_items=(10, 20), positions="5"))
    result.curves           # DataFrame: accuracy and log p by gold position, with 95% intervals

Layout as every analysis package: `params.py`, `run.py`, `result.py`, then the algorithm modules: `prompts`
(the paper's templates, scoring), `synthetic` and `loaders` (examples), `sweep` (examples at every position,
curves), `evaluate` and `prefix` (scoring prompts, shared-prefix reuse), `attention` (retrieval heads), `stats`.
"""

from __future__ import annotations

from interp.lazy import lazy_attributes

__all__ = ["RecallParams", "RecallResult", "run_lost_in_middle"]
__getattr__ = lazy_attributes(__name__, {"RecallParams": "params", "RecallResult": "result",
                                         "run_lost_in_middle": "run"})
