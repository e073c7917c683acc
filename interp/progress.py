"""The one progress protocol of interp: an optional callable that wraps an iterable.

Every long loop in an analysis takes ``progress=None`` and iterates ``track(progress, items, "what")``.
A progress callable is anything with the signature ``progress(iterable, desc=str, total=int | None)``
that returns an iterable over the same items: ``tqdm`` itself fits, and so does
``lambda it, **kw: it``. None means silence. The CLI and the report pass `tqdm_progress()`: bars on stderr
(stdout stays clean for ``--json``), cleared when a loop ends.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
Progress = Callable[..., Iterable]


def track(progress: Progress | None, items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
    """`items`, wrapped by `progress` when one is given."""
    if progress is None:
        return items
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    return progress(items, desc=desc, total=total)


def tqdm_progress(enabled: bool = True) -> Progress | None:
    """tqdm bars on stderr that disappear when done; None when `enabled` is false (--no-progress)."""
    if not enabled:
        return None

    def progress(iterable: Iterable[T], desc: str = "", total: int | None = None) -> Iterable[T]:
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True, file=sys.stderr)

    return progress
