"""What every on-disk cache of interp shares: honest keys, failing soft, and cleaning up after killed runs.

- `code_version(*modules)`: interp's version and a hash of the source of the modules that compute a cached
  thing. Cache keys include it, so a result computed by older code is never reused silently.
- `warn_once(kind, message)`: a cache that cannot be written (``INTERP_CACHE=/dev/null/x``, a full disk,
  a read-only home) is only slower, never an error: one warning on stderr per kind, then interp carries on
  uncached.
- `sweep_stale(folder)`: temporary files and folders (``.tmp-*``, ``*.partial``, ``.<key>-*``) that a killed
  run left behind, older than an hour (so a concurrent writer's temporary is never touched), are removed.
- `scratch_dir()`: where an uncached result is materialised instead (removed when the process exits).
- `one_writer(path)`: while one process computes a cache entry, another that wants the same entry waits
  for it and then reads it, instead of computing it a second time.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import shutil
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

STALE_SECONDS = 3600.0
_warned: set[str] = set()
_scratch: list[Path] = []


def interp_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("interp")
    except PackageNotFoundError:
        return "unknown"


@cache
def _source_hash(module: str) -> str:
    """sha256 of a module's source, or of every .py file under a package (recursively)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return "missing"
    h = hashlib.sha256()
    if spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            for f in sorted(Path(root).rglob("*.py")):
                h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    elif spec.origin and Path(spec.origin).is_file():
        h.update(Path(spec.origin).read_bytes())
    else:
        return "missing"
    return h.hexdigest()[:16]


def code_version(*modules: str) -> str:
    """'<interp version>+<hash of the named modules' source>': part of a cache key."""
    h = hashlib.sha256()
    for m in sorted(modules):
        h.update(f"{m}={_source_hash(m)};".encode())
    return f"{interp_version()}+{h.hexdigest()[:16]}"


def module_of(target: str) -> str:
    """The code a 'package.module:function' target stands for: for an analysis of interp, its whole package
    (``interp.analysis.induction``), otherwise the module."""
    module = target.partition(":")[0]
    parts = module.split(".")
    if parts[:2] == ["interp", "analysis"] and len(parts) > 3:
        return ".".join(parts[:3])
    return module


def warn_once(kind: str, message: str) -> None:
    """One line on stderr the first time `kind` happens in this process."""
    if kind in _warned:
        return
    _warned.add(kind)
    print(f"Warning: {message}", file=sys.stderr, flush=True)


def sweep_stale(folder: Path, patterns: tuple[str, ...] = (".tmp-*", "*.partial", ".old-*"),
                max_age: float = STALE_SECONDS) -> int:
    """Remove what killed runs left in `folder` (not recursive): entries matching `patterns` untouched for
    `max_age` seconds. Never raises; returns how many were removed."""
    removed = 0
    try:
        now = time.time()
        for pattern in patterns:
            for p in folder.glob(pattern):
                try:
                    if now - p.lstat().st_mtime < max_age:
                        continue
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
                    removed += 1
                except OSError:
                    continue
    except OSError:
        pass
    return removed


def scratch_dir(prefix: str = "interp-uncached-") -> Path:
    """A private temporary folder, removed when the process exits (results that could not be cached)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if not _scratch:
        atexit.register(lambda: [shutil.rmtree(p, ignore_errors=True) for p in _scratch])
    _scratch.append(path)
    return path


@contextlib.contextmanager
def one_writer(path: Path, wait: bool = True):
    """Hold an exclusive lock on ``<path>.lock`` for the block: the caller checks whether `path` exists
    inside it, and computes it only if not. The kernel releases the lock when a process dies, so a killed
    writer never blocks the next. Where locks are unavailable (no `fcntl`, an unwritable cache) the block runs
    unlocked: at worst the entry is computed twice, as without this. Yields True when the block may write;
    with ``wait=False`` it yields False at once, instead of waiting, while another process holds the lock."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_name(path.name + ".lock"), "a")  # noqa: SIM115 - closed below
    except (ImportError, OSError):
        yield True
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        handle.close()  # releases the lock
