"""Moved to :mod:`interp.markdown` (results render their own notebook HTML with it); kept importable."""

from interp.markdown import inline, to_html

__all__ = ["inline", "to_html"]
