"""One local Ray runtime per test session (2 CPUs, no dashboard), started the way `interp --workers 2`
starts one (`interp.sweep.runtime`), with a private INTERP_CACHE for ROME's statistics on the workers."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_runtime(tmp_path_factory):
    pytest.importorskip("ray", reason="Ray is not installed (make test installs the ray extra)")
    from interp.sweep import runtime

    cache = tmp_path_factory.mktemp("sweep-cache")
    old = os.environ.get("INTERP_CACHE")
    os.environ["INTERP_CACHE"] = str(cache)  # workers inherit it: their statistics stay private
    trusted = os.environ.get("INTERP_SPEC_MODULES")
    os.environ["INTERP_SPEC_MODULES"] = "tests"  # the workers may run the test specs' fake analysis
    try:
        rt = runtime.start(workers=2)
    finally:
        if trusted is None:
            os.environ.pop("INTERP_SPEC_MODULES")
        else:
            os.environ["INTERP_SPEC_MODULES"] = trusted
    yield rt
    rt.ray.shutdown()
    if old is None:
        os.environ.pop("INTERP_CACHE", None)
    else:
        os.environ["INTERP_CACHE"] = old


@pytest.fixture
def shard_root(tmp_path, monkeypatch):
    """Each test's own shard cache (the driver's INTERP_CACHE)."""
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
