"""interp.allocator: with freed memory kept, a repeated full cache stops faulting in fresh pages (measured as
the process's minor page faults, in a fresh interpreter each, with and without the setting)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import json, resource, sys, torch
sys.path.insert(0, {root!r})
from interp.allocator import keep_freed_memory
from tests.tiny import tiny_model
applied = keep_freed_memory()
torch.set_num_threads(1)
model = tiny_model("llama", d_model=256, n_heads=8, n_kv_heads=4, d_head=32, d_mlp=768, n_ctx=512)
tokens = torch.randint(0, 64, (8, 512), generator=torch.Generator().manual_seed(0))
faults = []
with torch.no_grad():
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        model.run_with_cache(tokens)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({{"applied": applied, "faults": faults}}))
"""


def _faults(keep: bool) -> dict:
    env = dict(os.environ, INTERP_KEEP_FREED_MEMORY="1" if keep else "0", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", PROGRAM.format(root=str(ROOT))], env=env, capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_kept_memory_removes_the_repeated_page_faults():
    off, on = _faults(keep=False), _faults(keep=True)
    assert off["applied"] is False and on["applied"] is True
    # each call keeps its attention scores and patterns alive (64 MiB each, above any mmap threshold glibc
    # picks by itself): with glibc's defaults every call faults them in again, 16,384 pages apiece
    assert min(off["faults"][1:]) > 4 * 16384, off
    assert on["faults"][-1] < min(off["faults"][1:]) / 10, (on, off)
    assert sum(on["faults"][1:]) < sum(off["faults"][1:]) / 5, (on, off)
