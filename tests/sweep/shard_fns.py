"""Shard functions for the engine's own tests (workers import them by reference)."""

import torch


def edit_then_fail(model, payload, state):
    with torch.no_grad():
        model.blocks[0].mlp.w_out.add_(1.0)
    raise RuntimeError("a shard that fails after editing the weights")


def w_out_sum(model, payload, state):
    return sum(float(b.mlp.w_out.detach().sum()) for b in model.blocks)
