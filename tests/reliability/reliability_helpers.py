"""Helpers of the reliability tests (a spec writer); a module of its own, so no test imports a conftest."""

from __future__ import annotations

from pathlib import Path

import torch

from interp.model.config import ModelConfig
from interp.model.transformer import Transformer


def tiny_model() -> Transformer:
    cfg = ModelConfig(name="tiny-llama", architecture="llama", n_layers=2, d_model=32, n_heads=4, n_kv_heads=2,
                      d_head=8, d_mlp=48, d_vocab=64, n_ctx=128, rope_base=10_000.0, act="silu")
    torch.manual_seed(0)
    return Transformer(cfg).init_weights(0, std=0.2).eval()


SPEC = """name = "{name}"
title = {title}
order = {order}
analysis = "reliability_fake:run_fake"
params_class = "reliability_fake:FakeParams"
seed = 1
description = {description}
[params]
{params}
"""


def write_spec(folder: Path, name: str, order: int = 10, params: str = "", title: str = '"Fake"',
               description: str = '"A fake experiment."') -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(SPEC.format(name=name, order=order, params=params, title=title, description=description))
    return path
