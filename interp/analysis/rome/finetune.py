"""Fine-tuning baselines for fact editing: FT (unconstrained) and FT-L (an L-infinity bound on the change), as
the ROME paper (Meng et al. 2022, section 3.3 and appendix) compares them with ROME.

Both fine-tune one MLP output matrix W_out (here: the ROME layer's, "the same MLP weight" as ROME edits) with
Adam to maximise the probability of the new target after the rewrite prompt; FT-L clamps every entry of the
change to [-eps, eps] after each step, so ||W' - W||_inf <= eps. What is taken from the reference code
(github.com/kmeng01/rome, ``baselines/ft/ft_main.py`` and ``hparams/FT/*.json``; read, not copied):
- the optimiser and its settings: Adam, lr 5e-4, weight decay 0, 25 steps, a step skipped (and the loop
  stopped) once the loss is below 1e-2;
- FT-L's bound: ``norm_constraint`` 5e-4, applied after every step as a clamp to the original +- eps;
  FT is the same with no bound (``norm_constraint: false``, as AlphaEdit's hparams/FT/Llama3-8B.json);
- the change is computed, the weights put back, and the change returned as an update to apply.
Departures: the loss is the teacher-forced mean NLL of every target token (the reference scores all target
tokens at the prompt's last position, which is the same for one-token targets); and only W_out is tuned (the
reference's module name also matches GPT-2's c_proj bias; our edits change W_out only, so FT's change is
comparable with ROME's). The result is an :class:`Edit` whose factors are the full change: left = Delta W,
right = I (applying it adds Delta W exactly: x * 1 + 0s is exact in floating point).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interp.analysis.rome.edit import Edit, LayerDelta, weight_hash
from interp.analysis.rome.hparams import default_layer
from interp.analysis.rome.key import EditRequest, target_ids
from interp.errors import EditError, InvalidInputError


@dataclass(frozen=True)
class FTParams:
    layer: int | None = None  # None: the model's ROME layer (hparams.DEFAULT_LAYERS)
    lr: float = 5e-4
    steps: int = 25
    norm_constraint: float | None = 5e-4  # FT-L's eps on |Delta W| entries; None: unconstrained FT
    weight_decay: float = 0.0
    stop_loss: float = 1e-2  # no step (and stop) once the loss is below this
    # Speed only (the same numbers to float rounding; tests/analysis/rome/test_finetune.py): the layers below the
    # tuned one run once (nothing there depends on W_out), and logits are computed only where the loss reads
    # them (the unembedding of every position was a fifth of each forward on SmolLM2). benchmarks/edit_speed.py
    reuse_prefix: bool = True

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.steps < 1:
            raise InvalidInputError("Fine-tuning needs a positive learning rate and at least one step.")
        if self.norm_constraint is not None and self.norm_constraint <= 0:
            raise InvalidInputError("FT-L's norm constraint must be positive (or none, for FT).")

    @property
    def method(self) -> str:
        return "ft" if self.norm_constraint is None else "ft-l"

    @classmethod
    def ft(cls, **changes) -> FTParams:
        """Unconstrained FT: the same optimisation without the L-infinity bound."""
        return cls(**{"norm_constraint": None, **changes})


@contextlib.contextmanager
def _only_trainable(model, param: torch.nn.Parameter):
    """Only `param` requires a gradient for the duration (every flag restored afterwards)."""
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(p is param)
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)


def _batch(model, requests: Sequence[EditRequest]):
    """Left-padded prompt + target ids, the mask, and per row the (positions, ids) of its target tokens."""
    targets = [target_ids(model, r.target_new) for r in requests]
    seqs = [model.encode(r.text) + t for r, t in zip(requests, targets)]
    tokens, mask = model.pad_left(seqs)
    n = tokens.shape[1]
    where = [(torch.arange(n - len(t) - 1, n - 1), torch.tensor(t)) for t in targets]  # logits predicting t
    return tokens.to(model.device), mask.to(model.device), where


def target_loss(model, tokens, mask, where) -> torch.Tensor:
    """Mean over requests of the mean NLL of each target's tokens (teacher-forced)."""
    logits = model(tokens, attention_mask=mask)  # (b, p, vocab)
    losses = []
    for r, (pos, ids) in enumerate(where):
        lp = torch.log_softmax(logits[r, pos.to(logits.device)].float(), -1)  # (len(t), vocab)
        losses.append(-lp[torch.arange(len(ids)), ids.to(lp.device)].mean())
    return torch.stack(losses).mean()


class _Loss:
    """target_loss as a function of the tuned W_out; with ``reuse``, the residual entering `layer` is computed
    once and each call runs only layers `layer`.. and reads logits only at the target positions."""

    def __init__(self, model, tokens, mask, where, layer: int, reuse: bool):
        self.model, self.tokens, self.mask, self.where = model, tokens, mask, where
        self.layer, self.reuse = layer, reuse
        if reuse:
            with torch.no_grad():
                self.resid_in = model(tokens, attention_mask=mask, stop_at_layer=layer)  # (b, p, d_model)

    def __call__(self) -> torch.Tensor:
        m = self.model
        if not self.reuse:
            return target_loss(m, self.tokens, self.mask, self.where)
        final = m(self.resid_in, attention_mask=self.mask, start_at_layer=self.layer, return_type="resid")
        losses = []
        for r, (pos, ids) in enumerate(self.where):
            lp = torch.log_softmax(m.logits_from_resid(final[r, pos.to(final.device)]).float(), -1)  # (len(t), vocab)
            losses.append(-lp[torch.arange(len(ids)), ids.to(lp.device)].mean())
        return torch.stack(losses).mean()


def ft_edit(model, requests: Sequence[EditRequest], params: FTParams = FTParams(), apply: bool = True) -> Edit:
    """Fine-tune W_out of one layer on the requests (FT, or FT-L with params.norm_constraint) and return the
    change as an Edit (applied unless apply=False); the model's weights are as before when it is not applied."""
    requests = list(requests)
    if not requests:
        raise EditError("Fine-tuning needs at least one request.")
    layer = default_layer(model.cfg.name, model.cfg.n_layers) if params.layer is None else params.layer
    if not 0 <= layer < model.cfg.n_layers:
        raise EditError(f"Layer {layer} does not exist; {model.cfg.name} has layers 0-{model.cfg.n_layers - 1}.")
    w = model.blocks[layer].mlp.w_out
    original = w.detach().clone()
    base = weight_hash(w)
    tokens, mask, where = _batch(model, requests)
    opt = torch.optim.Adam([w], lr=params.lr, weight_decay=params.weight_decay)
    losses = []
    try:
        compute_loss = _Loss(model, tokens, mask, where, layer, params.reuse_prefix)
        with _only_trainable(model, w), torch.enable_grad():
            for _ in range(params.steps):
                opt.zero_grad()
                loss = compute_loss()
                losses.append(float(loss.detach()))
                if losses[-1] < params.stop_loss:  # the reference: no step below 1e-2, and stop
                    break
                loss.backward()
                opt.step()
                if params.norm_constraint is not None:  # FT-L: clamp to the original +- eps after each step
                    with torch.no_grad():
                        eps = params.norm_constraint
                        w.copy_(torch.maximum(torch.minimum(w, original + eps), original - eps))
        delta = (w.detach() - original).float()
    finally:
        with torch.no_grad():
            w.copy_(original)
        opt.zero_grad(set_to_none=True)
    eye = torch.eye(delta.shape[1], dtype=delta.dtype, device=delta.device)
    info = {"layer": layer, "steps": len(losses), "loss_first": losses[0], "loss_last": losses[-1],
            "lr": params.lr, "norm_constraint": params.norm_constraint,
            "max_abs_change": float(delta.abs().max()), "change_norm": float(delta.norm())}
    edit = Edit(model.cfg.name, params.method, [LayerDelta(layer, delta, eye, base)], requests, info)
    return edit.apply(model, check=False) if apply else edit
