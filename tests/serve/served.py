"""`interp serve` as a user starts it: a subprocess on 127.0.0.1 with a free port, over a model folder.

The tiny model is exported with its tokenizer (`export_model`) so that `load_model(folder)` reads it back
exactly as it would a user's own model. Every wait is bounded; the server is always stopped.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"at (http://\S+)")


@contextmanager
def serve_process(args: list[str], cache: Path | None, timeout: float = 300.0):
    """Run `interp serve ARGS`; yield (url, process) once it prints its address. cache: INTERP_CACHE for
    the server (None: the shared one, where the real models' weights and statistics are)."""
    env = os.environ | {"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                        "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1"}
    if cache is not None:
        env["INTERP_CACHE"] = str(cache)
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url, seen = None, []
        deadline = time.monotonic() + timeout
        while url is None:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                rest = proc.stdout.read() if proc.poll() is not None else ""
                raise RuntimeError("interp serve did not start:\n" + "".join(seen) + rest)
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if ready:
                line = proc.stdout.readline()
                seen.append(line)
                match = URL.search(line)
                url = match.group(1) if match else None
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def export_tiny(folder: Path) -> Path:
    """The tiny lab model with its tokenizer, written as a model folder `interp serve --model` loads."""
    from interp.analysis.rome import export_model
    from tests.serve.tiny_lab import tiny_lab_model

    return export_model(tiny_lab_model(), folder)
