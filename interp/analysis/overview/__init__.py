"""The model at a glance: next-token predictions on a few fact prompts and the logit lens (nostalgebraist
2020): the residual stream after each layer read through the final norm and the unembedding, showing at which
depth the answer appears (one prompt at a time: `interp.analysis.inspect`).

Layout as every analysis package: `params.py`, `run.py` (`run_overview`), `result.py`.
"""

from __future__ import annotations

from interp.lazy import lazy_attributes

__all__ = ["OverviewParams", "OverviewResult", "run_overview"]
_WHERE = {"OverviewParams": "params", "OverviewResult": "result", "run_overview": "run"}

__getattr__ = lazy_attributes(__name__, _WHERE)
