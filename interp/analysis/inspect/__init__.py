"""A first look at a model on one prompt: its config, its next-token distribution, and the logit lens.

The logit lens (nostalgebraist 2020) reads the residual stream after each layer through the final norm
and the unembedding, showing at which depth the eventual answer becomes the top prediction.

Layout as every analysis package: `params.py` (`InspectParams`), `run.py` (`run_inspect`, and
`inspect_prompt`, the same call for library code that has a prompt in hand: the lab, the overview),
`result.py` (`InspectResult`, `interp inspect`'s output).
"""

from __future__ import annotations

from interp.lazy import lazy_attributes

__all__ = ["InspectParams", "InspectResult", "inspect_prompt", "run_inspect"]
_WHERE = {"InspectParams": "params", "InspectResult": "result", "inspect_prompt": "run", "run_inspect": "run"}

__getattr__ = lazy_attributes(__name__, _WHERE)
