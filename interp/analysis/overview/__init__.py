"""The model at a glance: next-token predictions on a few fact prompts and the logit lens (nostalgebraist
2020): the residual stream after each layer read through the final norm and the unembedding, showing at which
depth the answer appears (one prompt at a time: `interp.analysis.inspect`).

Layout as every analysis package: `params.py`, `run.py` (`run_overview`), `result.py`.
"""

from __future__ import annotations

__all__ = ["OverviewParams", "OverviewResult", "run_overview"]
_WHERE = {"OverviewParams": "params", "OverviewResult": "result", "run_overview": "run"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
