"""Fixtures for the reliability tests: a tiny model, a private cache, and a trusted fake analysis.

`reliability_fake` (this folder) is an analysis in interp's common shape whose text comes from its
parameters (so a test can put payloads into the report) and which can be told to wait at a point, so a
test can kill the process there. Specs may name it because INTERP_SPEC_MODULES trusts it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))  # appended: tests/report's own `conftest` import must keep finding its own

from reliability_helpers import tiny_model  # noqa: E402

from interp.model.transformer import Transformer  # noqa: E402


@pytest.fixture
def tiny() -> Transformer:
    return tiny_model()


@pytest.fixture(autouse=True)
def trusted_fake(monkeypatch):
    monkeypatch.setenv("INTERP_SPEC_MODULES", "reliability_fake")


@pytest.fixture
def cache_env(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("INTERP_CACHE", str(root))
    return root
