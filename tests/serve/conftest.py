"""Fixtures for `interp serve`: a tiny random llama with a tiny word-level tokenizer, a Lab over it, and
the app behind an ASGI test client. The tiny model's statistics and contexts are cached per test."""

from __future__ import annotations

import pytest
import torch

from tests.serve.tiny_lab import tiny_lab_model


@pytest.fixture
def tiny_cache(tmp_path, monkeypatch):
    """Statistics and contexts of tiny models go to a per-test folder (the real models keep the shared cache)."""
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def lab(tiny_cache):
    from interp.analysis.rome import StatsParams
    from interp.serve import Lab

    return Lab(tiny_lab_model(), stats=StatsParams(n_tokens=400, sample_len=24, batch_size=16))


@pytest.fixture
def client(lab):
    from fastapi.testclient import TestClient

    from interp.serve import create_app

    with TestClient(create_app(lab)) as c:
        yield c


@pytest.fixture(autouse=True)
def _threads():
    # the test client runs sync endpoints in worker threads; keep torch from oversubscribing shared CPUs
    n = torch.get_num_threads()
    torch.set_num_threads(min(n, 2))
    yield
    torch.set_num_threads(n)
