"""Path patching (Wang et al. 2022, "Interpretability in the Wild"): the effect of a sender's output that
reaches a receiver directly, the rest of the model seeing the clean run.

For each sender (a head (layer, head) or an MLP ("mlp", layer)) and the receivers (a head's query, key or
value input (layer, head, "q" | "k" | "v"), or "logits"):
  1. run the clean prompt with the sender's output taken from the corrupted run and every other head's
     output frozen at its clean value (MLPs recompute, as in ARENA's implementation; `freeze_mlps=True`
     freezes them too), and record what the receivers read;
  2. run the clean prompt again with only the receivers' inputs replaced by those recordings, and measure.
For "logits" step 1 is the measurement. With grouped-query attention a key/value receiver is the key/value
head of that query head, shared by its group. Receiver inputs are the per-head copies of the block's input
(`hook_q_input` / `hook_k_input` / `hook_v_input`), normalised by ln1 on their own.

Scores are (sender, pairs), the metric after patching; `direction="noise"`: 0 = no effect, 1 = the whole
corrupted effect, after `normalized()`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interp.model import hook_names
from interp.patching.activation import as_pairs
from interp.patching.metrics import Metric
from interp.patching.result import PatchResult

Sender = tuple[int, int] | tuple[str, int]  # (layer, head) or ("mlp", layer)
Receiver = tuple[int, int, str] | str  # (layer, head, "q" | "k" | "v") or "logits"


def sender_label(s: Sender) -> str:
    return f"MLP{s[1]}" if s[0] == "mlp" else f"L{s[0]}H{s[1]}"


@torch.no_grad()
def path_patch(model, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric, senders: Sequence[Sender],
               receivers: Sequence[Receiver] | Receiver = "logits", freeze_mlps: bool = False,
               rows_per_forward: int = 32) -> PatchResult:
    clean, corrupted = as_pairs(clean, corrupted)
    receivers = [receivers] if isinstance(receivers, str) else list(receivers)
    _check(model, senders, receivers)
    n_layers = model.cfg.n_layers
    names = [hook_names.z(l) for l in range(n_layers)] + [hook_names.mlp_out(l) for l in range(n_layers)]
    _, clean_cache = model.run_with_cache(clean, names_filter=names)
    _, corrupt_cache = model.run_with_cache(corrupted, names_filter=names)
    n = clean.shape[0]
    per_forward = max(1, rows_per_forward // n)
    scores = []
    for first in range(0, len(senders), per_forward):
        chunk = list(senders[first:first + per_forward])
        rows = clean.repeat(len(chunk), 1)
        hooks = _sender_hooks(model, chunk, n, clean_cache, corrupt_cache, freeze_mlps)
        if receivers == ["logits"]:
            with model.hooks(fwd_hooks=hooks):
                scores.append(metric(model(rows)).view(len(chunk), n))
            continue
        recorded: dict[str, torch.Tensor] = {}
        record = [(hook_names.qkv_input(layer, which), _recorder(recorded)) for layer, _, which in receivers]
        with model.hooks(fwd_hooks=hooks + record):
            model(rows, stop_at_layer=max(r[0] for r in receivers) + 1)
        with model.hooks(fwd_hooks=_receiver_hooks(model, receivers, recorded)):
            scores.append(metric(model(rows)).view(len(chunk), n))
    clean_m, corrupted_m = metric(model(clean)).float().cpu(), metric(model(corrupted)).float().cpu()
    return PatchResult("path", "path", ("sender",), torch.cat(scores).float().cpu(), clean_m, corrupted_m, "noise",
                       labels={"sender": [sender_label(s) for s in senders]})


def _check(model, senders, receivers) -> None:
    cfg = model.cfg
    for s in senders:
        ok = (s[0] == "mlp" and 0 <= s[1] < cfg.n_layers) or (
            isinstance(s[0], int) and 0 <= s[0] < cfg.n_layers and 0 <= s[1] < cfg.n_heads)
        if not ok:
            raise ValueError(f"sender {s!r} is neither (layer, head) nor ('mlp', layer) of this model")
    for r in receivers:
        if r == "logits":
            continue
        if not (len(r) == 3 and r[2] in ("q", "k", "v") and 0 <= r[0] < cfg.n_layers and 0 <= r[1] < cfg.n_heads):
            raise ValueError(f"receiver {r!r} is neither (layer, head, 'q'|'k'|'v') nor 'logits'")
    if "logits" in receivers and len(receivers) > 1:
        raise ValueError("'logits' is a receiver of its own; do not mix it with head inputs")


def _sender_hooks(model, chunk, n, clean_cache, corrupt_cache, freeze_mlps):
    """Per layer: heads frozen at clean (and MLPs if asked), each row block's sender from the corrupted run."""
    hooks = []
    for layer in range(model.cfg.n_layers):
        heads = [(i, s[1]) for i, s in enumerate(chunk) if s[0] == layer]
        mlps = [i for i, s in enumerate(chunk) if s[0] == "mlp" and s[1] == layer]

        def z_hook(act, hook, layer=layer, heads=heads):
            act = clean_cache[hook_names.z(layer)].repeat(len(chunk), 1, 1, 1).to(act.dtype)
            for i, h in heads:
                act[i * n:(i + 1) * n, :, h] = corrupt_cache[hook_names.z(layer)][:, :, h]
            return act

        def mlp_hook(act, hook, layer=layer, mlps=mlps):
            if freeze_mlps:
                act = clean_cache[hook_names.mlp_out(layer)].repeat(len(chunk), 1, 1).to(act.dtype)
            else:
                act = act.clone()
            for i in mlps:
                act[i * n:(i + 1) * n] = corrupt_cache[hook_names.mlp_out(layer)]
            return act

        hooks.append((hook_names.z(layer), z_hook))
        if freeze_mlps or mlps:
            hooks.append((hook_names.mlp_out(layer), mlp_hook))
    return hooks


def _recorder(store: dict):
    def hook(act, hook):
        store[hook.name] = act.detach().clone()
    return hook


def _receiver_hooks(model, receivers, recorded):
    by_name: dict[str, list[int]] = {}
    for layer, head, which in receivers:
        index = head if which == "q" else head // model.cfg.group_size  # a key/value head serves its group
        by_name.setdefault(hook_names.qkv_input(layer, which), []).append(index)

    def hook(act, hook):
        act = act.clone()
        for index in by_name[hook.name]:
            act[:, :, index] = recorded[hook.name][:, :, index]
        return act

    return [(name, hook) for name in by_name]
