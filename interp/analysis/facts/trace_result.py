"""Moved: `TraceResult` to `interp.analysis.facts.result`, `run_trace` to `interp.analysis.facts.run`.
Kept importable for older code and experiment specs."""

from interp.analysis.facts.result import CATEGORY_LABEL, KIND_LABEL, TraceResult
from interp.analysis.facts.run import run_trace

__all__ = ["TraceResult", "run_trace", "KIND_LABEL", "CATEGORY_LABEL"]
