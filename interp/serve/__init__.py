"""`interp serve`: a local lab page over one loaded model.

Ask it for next tokens, the logit lens and attention patterns, trace where a fact is recalled, rewrite
the fact with ROME or MEMIT, compare before and after, undo exactly, save and load edit files. The
library side is :class:`Lab` (no web framework); :func:`create_app` wraps it in a FastAPI app whose JSON
API the self-contained page (`interp.serve.page`) calls.
"""

from __future__ import annotations

__all__ = ["Lab", "Limits", "create_app"]


def __getattr__(name: str):
    if name in ("Lab", "Limits"):
        from interp.serve import lab

        return getattr(lab, name)
    if name == "create_app":
        from interp.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'interp.serve' has no attribute {name!r}")
