"""Patching a clean/corrupted prompt pair from the CLI: which layer, position and head carry the difference
between two prompts (`interp patch`). The circuit tools themselves (activation, attribution and path
patching, direct logit attribution) are `interp.patching`; this package runs them on text.

Layout as every analysis package: `params.py`, `run.py` (`run_patch`), `result.py`.
"""

from __future__ import annotations

from interp.lazy import lazy_attributes

__all__ = ["PatchParams", "PatchReport", "run_patch"]
_WHERE = {"PatchParams": "params", "PatchReport": "result", "run_patch": "run"}

__getattr__ = lazy_attributes(__name__, _WHERE)
