"""Freed CPU memory kept for reuse, so that a forward which keeps activations alive stops paying page faults.

glibc's malloc hands blocks above its mmap threshold straight back to the OS when they are freed, and trims
the top of its heap once more than M_TRIM_THRESHOLD of it is free. A forward that keeps every activation
(``run_with_cache``: some 1.3 GB at 8 x 128 on SmolLM2) therefore gets fresh pages on every call, and the
kernel faults and zeroes each 4 KiB of them the first time it is written: about 480,000 minor faults per
call there, most of the full cache's cost over a plain forward. ``keep_freed_memory`` raises both
thresholds (mallopt), so freed blocks stay in the heap and the next call reuses them: no faults after the
first call. The price: the process keeps its peak of heap memory until it exits (the memory is reused,
not returned to the OS), so `interp.memory`'s checks, which read the OS's available memory, no longer count
what this process holds free for itself: they err on the side of refusing.

It is process-wide. ``load_model`` applies it on Linux with glibc (``INTERP_KEEP_FREED_MEMORY=0`` turns it
off); elsewhere it does nothing. It affects every library in the process alike, transformers included.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap (and return to it when freed)
TRIM_THRESHOLD = 2**31 - 1  # the largest value mallopt takes: the heap's top is never trimmed
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tell glibc to keep freed memory for reuse (once per process). True when the setting is in force."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("INTERP_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
