"""interp: a mechanistic interpretability toolkit.

`interp.load_model(name_or_path, dtype=...)` returns a hooked transformer; the analyses live in
`interp.analysis`, the residual-stream tools in `interp.interventions`. Importing `interp` is cheap: torch
is imported on first use of the model.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["load_model", "__version__"]


def __getattr__(name: str):
    if name == "load_model":
        from interp.model.load import load_model

        return load_model
    raise AttributeError(f"module 'interp' has no attribute {name!r}")
