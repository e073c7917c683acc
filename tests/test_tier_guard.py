"""The fast tier's guard (tests/conftest.py) refuses what `make test-fast` must never do, in this process and
in the processes a test starts: load a real model, import or start Ray, launch a browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_a_real_model_is_refused_in_a_fast_test():
    from interp.model.load import load_model

    with pytest.raises(pytest.fail.Exception, match="loads the real model smollm2-135m but is not marked slow"):
        load_model("smollm2-135m")


def test_ray_is_refused_in_a_fast_test():
    with pytest.raises(pytest.fail.Exception, match="(imports|starts) Ray but is not marked slow"):
        if "ray" in sys.modules:  # an earlier slow test imported it: starting it is refused
            sys.modules["ray"].init()
        import ray  # noqa: F401


def test_a_browser_is_refused_before_it_starts():
    with pytest.raises(pytest.fail.Exception, match=r"launches a browser \(chromium\)"):
        subprocess.Popen(["chromium", "--headless", "about:blank"])


@pytest.mark.parametrize("code, what", [
    ("from interp.model.load import load_model; load_model('gemma3-270m')", "loaded the real model gemma3-270m"),
    ("import ray", "imported Ray")])
def test_a_child_process_is_stopped_and_reported(code, what):
    log = Path(os.environ["INTERP_TIER_GUARD_LOG"])
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    reported = log.read_text()
    log.write_text("")  # seen here: the teardown would otherwise fail this test for it
    assert proc.returncode == 86, proc.stderr
    assert reported.startswith("a child process (-c) ") and what in reported


def test_a_plain_child_process_runs():
    proc = subprocess.run([sys.executable, "-c", "import interp.model.registry as r; print(sorted(r.MODELS))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "smollm2-135m" in proc.stdout, proc.stderr
