"""Fixtures for the report tests: a tiny random model, a fake analysis importable by name, and specs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # so specs can name "report_fake_analysis:run_fake"

from interp.model.config import ModelConfig  # noqa: E402
from interp.model.transformer import Transformer  # noqa: E402

FAKE_SPEC = """
name = "{name}"
title = "Fake analysis {name}"
order = {order}
analysis = "report_fake_analysis:run_fake"
params_class = "report_fake_analysis:FakeParams"
seed = 3
command = "interp fake --model {{model}}"
description = "A *fake* experiment for tests."
{extra}
[params]
{params}
[captions]
per_layer = "Residual norm by layer."
"""


def write_spec(folder: Path, name: str, order: int = 10, params: str = "n_tokens = 8", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(FAKE_SPEC.format(name=name, order=order, params=params, extra=extra))
    return path


@pytest.fixture(autouse=True)
def trust_fake_analysis(monkeypatch):
    """Specs may name only interp's code unless a package is trusted: these tests' fake analysis is."""
    monkeypatch.setenv("INTERP_SPEC_MODULES", "report_fake_analysis")


@pytest.fixture
def tiny_llama() -> Transformer:
    cfg = ModelConfig(name="tiny-llama", architecture="llama", n_layers=2, d_model=32, n_heads=4, n_kv_heads=2,
                      d_head=8, d_mlp=48, d_vocab=64, n_ctx=128, rope_base=10_000.0, act="silu")
    torch.manual_seed(0)
    return Transformer(cfg).init_weights(0, std=0.2).eval()


@pytest.fixture
def cache_env(tmp_path, monkeypatch) -> Path:
    """A private INTERP_CACHE so tests never touch the user's cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv("INTERP_CACHE", str(root))
    return root


@pytest.fixture
def spec_dir(tmp_path) -> Path:
    folder = tmp_path / "experiments"
    write_spec(folder, "alpha", order=10)
    write_spec(folder, "beta", order=20, params="n_tokens = 6")
    write_spec(folder, "gamma", order=30, extra='enabled = false\ndisabled_reason = "waiting for its analysis"\n')
    return folder


@pytest.fixture
def fake_calls():
    import report_fake_analysis

    report_fake_analysis.CALLS["n"] = 0
    return report_fake_analysis.CALLS


@pytest.fixture
def built_report(tmp_path, tiny_llama, spec_dir, cache_env) -> Path:
    """A report folder built from two fake experiments (one disabled) on the tiny model."""
    from interp.report.pipeline import make_report
    from interp.report.specs import load_specs

    out = tmp_path / "reports" / "tiny"
    make_report(tiny_llama, "tiny", load_specs(spec_dir), out, progress=False, echo=lambda s: None)
    return out
