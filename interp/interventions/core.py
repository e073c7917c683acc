"""The intervention primitives. See the package docstring for the conventions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch

from interp.model import hook_names

Hook = tuple[str, Callable]
Hooks = list[Hook]
Positions = int | slice | Sequence[int] | torch.Tensor | None


def _pos_index(pos: Positions):
    if pos is None:
        return slice(None)
    if isinstance(pos, int):
        return [pos]
    return pos


@contextlib.contextmanager
def intervene(model, *hook_lists: Iterable[Hook]) -> Iterator:
    """Apply hook lists for the duration of the block; hooks are removed in `finally`."""
    hooks = [h for hooks in hook_lists for h in hooks]
    with model.hooks(fwd_hooks=hooks):
        yield model


def set_activation(name: str, value: torch.Tensor, pos: Positions = None) -> Hooks:
    """Overwrite the activation at `name` (at `pos` on the sequence axis) with `value` (broadcast)."""
    idx = _pos_index(pos)

    def hook(act: torch.Tensor, hook) -> torch.Tensor:
        act = act.clone()
        act[:, idx] = value.to(act.dtype)
        return act

    return [(name, hook)]


def add_vector(name: str, vector: torch.Tensor, pos: Positions = None, scale: float = 1.0) -> Hooks:
    """Steering: add `scale * vector` (d_model,) to the activation at `name` (at `pos`)."""
    idx = _pos_index(pos)

    def hook(act: torch.Tensor, hook) -> torch.Tensor:
        act = act.clone()
        act[:, idx] = act[:, idx] + scale * vector.to(act.dtype)
        return act

    return [(name, hook)]


def patch_from_cache(name: str, cache, pos: Positions = None) -> Hooks:
    """Activation patching: replace `name` (at `pos`) with the same activation from another run's cache."""
    source = cache[name]
    idx = _pos_index(pos)

    def hook(act: torch.Tensor, hook) -> torch.Tensor:
        act = act.clone()
        act[:, idx] = source[:, idx].to(act.dtype)
        return act

    return [(name, hook)]


def ablate_heads(heads: Iterable[tuple[int, int]], mode: str = "zero", means: dict | None = None,
                 pos: Positions = None) -> Hooks:
    """Zero- or mean-ablate query heads' outputs at hook_z, so only their term of hook_attn_out changes.

    heads: (layer, head) pairs. For mode="mean", `means[layer]` is (n_heads, d_head) (see `head_means`).
    """
    if mode not in ("zero", "mean"):
        raise ValueError(f"mode must be 'zero' or 'mean', got {mode!r}")
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)
    idx = _pos_index(pos)
    hooks: Hooks = []
    for layer, hs in by_layer.items():

        def hook(z: torch.Tensor, hook, hs=hs, layer=layer) -> torch.Tensor:
            z = z.clone()  # (b, p, h, d)
            if mode == "zero":
                z[:, idx, hs] = 0.0
            else:
                z[:, idx, hs] = means[layer][hs].to(z.dtype)
            return z

        hooks.append((hook_names.z(layer), hook))
    return hooks


@torch.no_grad()
def head_means(model, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
    """Mean hook_z of every head over a reference batch: {layer: (n_heads, d_head)}, for mean ablation."""
    names = [hook_names.z(layer) for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens, attention_mask=attention_mask, names_filter=names)
    out = {}
    for layer in range(model.cfg.n_layers):
        z = cache[hook_names.z(layer)]  # (b, p, h, d)
        if attention_mask is not None:
            m = attention_mask[..., None, None].to(z.dtype)
            out[layer] = (z * m).sum((0, 1)) / m.sum((0, 1))
        else:
            out[layer] = z.mean((0, 1))
    return out


def capture(names: Sequence[str], store: dict, detach: bool = True) -> Hooks:
    """Record activations into `store[name]` without changing them (cheaper than a full cache)."""

    def hook(act: torch.Tensor, hook) -> None:
        store[hook.name] = act.detach() if detach else act

    return [(n, hook) for n in names]


@torch.no_grad()
def read_resid(model, tokens: torch.Tensor, layer: int, pos: Positions = None, where: str = "pre",
               attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The residual stream at `layer` ("pre", "mid" or "post"), at `pos`: (b, p', d_model).
    Stops the forward right after the layer it needs."""
    store: dict = {}
    name = hook_names.residual(layer, where)
    with intervene(model, capture([name], store)):
        model(tokens, attention_mask=attention_mask, stop_at_layer=layer + 1)
    return store[name][:, _pos_index(pos)]


def stop_at_layer(model, tokens: torch.Tensor, layer: int, **kwargs) -> torch.Tensor:
    """The residual stream entering `layer`, computing nothing after it."""
    return model(tokens, stop_at_layer=layer, **kwargs)
