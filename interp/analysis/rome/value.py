"""The value v*: what the edited layer should output at the subject so the model says the new target
(ROME section 3.1, step 2; the same optimisation gives MEMIT's z at its last layer).

A vector delta is added to a module's output at the subject's last token in every prompt; Adam
minimises

    mean over prefixed prompts of NLL(target_new)                            (make the new fact true)
  + kl_weight * KL of the next-token distribution of "{subject} is a"        (keep the subject's essence)
  + weight_decay * decay(delta)                                              (stay small)

with ||delta|| clamped to clamp_norm_factor * ||v0|| after every step, and an early stop. The reference
(rome/compute_v.py, memit/compute_z.py; ``ROMEParams()``, the default) and ours (``ROMEParams.ours()``, which
MEMIT's default uses) differ in four named places:

  ===================  ==========================================  ==========================================
  ROMEParams field     reference (ROME's default)                  ours (MEMIT's default)
  ===================  ==========================================  ==========================================
  decay                "norm": ||delta|| / ||v0||^2                "squared": ||delta||^2 / ||v0||^2
  kl_at                "subject": at the subject's last token      "last": at the KL prompt's last token
  kl_direction         "edited": KL(p_delta || p_orig)             "orig": KL(p_orig || p_delta)
  early_stop           "loss": total loss < 0.05; the last of      "nll": NLL < 0.05; every step updates
                       `steps` forward passes only evaluated
  ===================  ==========================================  ==========================================

v0 is the unedited value that delta is added to: the original update takes it at the bare prompt (the
reference's target_init, ``v0=None``); r-ROME and ours pass W k* (edit.py).

Speed, exactly the same computation: only layers from the edited one onward are run (the residual entering
it is computed once, since nothing before the edit depends on delta); logits are read only where the loss
reads them; and, ``reuse_prefix``, only the columns from the subject's last token on (the earliest over
the rows) are run at each step, attending to the earlier columns' keys and values computed once (a KV
cache), since no position before it depends on delta in any layer. benchmarks/rome.md measures each
against the authors' loop.

Where delta is added: ROME adds it to the output of ``blocks[l].mlp`` (a torch forward hook on the
module). That is the down projection's output, which for Gemma-3 is *before* ln2_post, so the loss
sees the post-norm exactly as the edited weight will; for LLaMA-style models it equals hook_mlp_out.
MEMIT adds it to ``blocks[L]``'s output, the residual stream after its last layer.

Through the edit (``ROMEParams.value_through_update``): the rank-one update adds (k . u) delta to the
layer's output for a key k (u: the update's right factor, edit.py), so a prompt whose subject key differs
from the keys the update was fitted to gets only a share k . u of delta. Passing those shares makes the
loss the edited model's own loss on these prompts, instead of assuming every prompt gets all of delta.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from interp.analysis.rome.hparams import ROMEParams
from interp.analysis.rome.key import EditRequest, encode_with_subject, pad_left, prefixed, target_ids


@dataclass
class ValueResult:
    delta: torch.Tensor  # (d_model,)
    v0_norm: float
    nll_before: float
    nll_after: float
    steps: int  # forward passes of the optimisation loop
    # the value delta is added to (the reference's target_init when taken at the bare prompt)
    v0: torch.Tensor | None = None


@contextlib.contextmanager
def frozen(model):
    """Parameters need no gradients while delta is optimised (restored afterwards)."""
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        yield model
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)


@contextlib.contextmanager
def add_at(module: nn.Module, rows: torch.Tensor, idx: torch.Tensor, delta: torch.Tensor,
           shares: torch.Tensor | None = None):
    """Add delta (d_model,) to module's output at [rows, idx] for the duration of the block; with
    shares (len(rows),), row r gets shares[r] * delta."""

    def hook(_mod, _inp, out):
        out = out.clone()
        add = delta if shares is None else shares[:, None].to(delta) * delta
        out[rows, idx] = out[rows, idx] + add.to(out.dtype)
        return out

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _prompts(model, request: EditRequest, contexts: Sequence[str], kl_prompt: str):
    """Rewrite prompts (each prefixed prompt + target[:-1]) then the KL prompt: tokens, mask, subject index,
    and for the rewrite rows the positions that predict the target tokens."""
    tgt = target_ids(model, request.target_new)
    seqs, idxs = [], []
    for t in prefixed(contexts, request.prompt):
        ids, i = encode_with_subject(model, t, request.subject)
        seqs.append(ids + tgt[:-1])
        idxs.append(i)
    ids, i = encode_with_subject(model, kl_prompt, request.subject)
    seqs.append(ids)
    idxs.append(i)
    tokens, mask, sub_idx = pad_left(model, seqs, idxs)
    n = tokens.shape[1]
    # position p predicts token p + 1: target token j of row r sits at n - len(tgt) + 1 + j - 1
    pred_pos = torch.arange(n - len(tgt), n, device=tokens.device)  # (len(tgt),) same for every row
    return tokens, mask, sub_idx, pred_pos, torch.tensor(tgt, device=tokens.device)


def _logprobs(model, resid: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(model.logits_from_resid(resid).float(), dim=-1)


class _Suffix:
    """The part of the batch that depends on delta, and the cached rest (``ROMEParams.reuse_prefix``).

    delta enters at each row's subject token, so every column before the first of them, c = min(sub_idx), is
    the same at every step in every layer: its keys and values from the edited layer on are computed once
    (a KV cache), and each step runs only columns c.. through the layers, attending to the cached ones.
    Without reuse c = 0 and the cache is empty: the whole batch runs every step."""

    def __init__(self, model, resid_in: torch.Tensor, mask: torch.Tensor, layer: int, reuse: bool,
                 sub_idx: torch.Tensor):
        from interp.model.transformer import KVCache

        self.model, self.layer = model, layer
        self.c = int(sub_idx.min()) if reuse else 0
        self.resid, self.mask = resid_in[:, self.c:], mask[:, self.c:]
        self.prefix = None
        if self.c > 0:
            cache = KVCache(model.cfg.n_layers)
            with torch.no_grad():
                model(resid_in[:, :self.c], attention_mask=mask[:, :self.c], start_at_layer=layer, past_kv=cache,
                      return_type=None)
            self.prefix = cache

    def _view(self):
        """A fresh cache over the prefix's tensors (a forward appends to its cache; the prefix stays as is)."""
        from interp.model.transformer import KVCache

        if self.prefix is None:
            return None
        view = KVCache(len(self.prefix.layers))
        for mine, theirs in zip(view.layers, self.prefix.layers):
            mine.k, mine.v = theirs.k, theirs.v
        view.positions, view.mask = self.prefix.positions, self.prefix.mask
        return view

    def run(self) -> torch.Tensor:
        """The final residual stream of columns c.. (b, n - c, d_model)."""
        return self.model(self.resid, attention_mask=self.mask, start_at_layer=self.layer, past_kv=self._view(),
                          return_type="resid")


def _capture_at(module: nn.Module, row: int, idx: int, store: dict):
    """A forward hook that keeps module's output at [row, idx] (the value before any delta) in store["v"]."""

    def hook(_mod, _inp, out):
        store["v"] = out[row, idx].detach().float().clone()

    return module.register_forward_hook(hook)


class _Problem:
    """The v* problem of one request: the prompts, the cached prefix, the unedited value v0 and KL reference."""

    def __init__(self, model, request: EditRequest, contexts: Sequence[str], layer: int, module: nn.Module,
                 v0: torch.Tensor | None, params: ROMEParams, shares: torch.Tensor | None):
        tokens, mask, sub_idx, pred_pos, self.tgt = _prompts(model, request, contexts, params.kl_prompt)
        self.model, self.module, self.params, self.shares = model, module, params, shares
        b = tokens.shape[0]
        self.n_rw = b - 1
        with torch.no_grad():
            resid_in = model(tokens, attention_mask=mask, stop_at_layer=layer)  # (b, p, d_model)
            self.suffix = _Suffix(model, resid_in, mask, layer, params.reuse_prefix, sub_idx)
            store: dict = {}
            handle = _capture_at(module, 0, int(sub_idx[0]) - self.suffix.c, store)
            try:
                final = self.suffix.run()
            finally:
                handle.remove()
        self.v0 = store["v"] if v0 is None else v0
        self.v0_norm = float(self.v0.norm())
        self.rows = torch.arange(b, device=tokens.device)
        self.idx = sub_idx - self.suffix.c
        self.pred = pred_pos - self.suffix.c
        self.kl_pos = int(self.idx[-1]) if params.kl_at == "subject" else final.shape[1] - 1
        self.kl_ref = _logprobs(model, final[-1, self.kl_pos]).detach()  # (vocab,) the unedited distribution

    def terms(self, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(NLL, KL, decay) at delta, unweighted but for the decay's weight: the loss is
        nll + kl_weight * kl + decay."""
        p, n_rw = self.params, self.n_rw
        with add_at(self.module, self.rows, self.idx, delta, self.shares):
            final = self.suffix.run()
        lp = _logprobs(self.model, final[:n_rw][:, self.pred])  # (n_rw, len(tgt), vocab)
        nll = -lp.gather(-1, self.tgt.expand(n_rw, -1)[..., None])[..., 0].mean()
        kl_lp = _logprobs(self.model, final[-1, self.kl_pos])
        if p.kl_direction == "edited":  # the reference: KL(p_delta || p_orig)
            kl = F.kl_div(self.kl_ref, kl_lp, log_target=True, reduction="sum")
        else:  # ours: KL(p_orig || p_delta)
            kl = F.kl_div(kl_lp, self.kl_ref, log_target=True, reduction="sum")
        if p.decay == "norm":  # the reference: ||delta|| / ||v0||^2
            decay = p.weight_decay * delta.norm() / self.v0_norm ** 2
        else:  # ours: ||delta||^2 / ||v0||^2
            decay = p.weight_decay * delta.norm() ** 2 / self.v0_norm ** 2
        return nll, kl, decay


def value_loss(model, request: EditRequest, contexts: Sequence[str], layer: int, module: nn.Module,
               delta: torch.Tensor, v0: torch.Tensor | None = None, params: ROMEParams = ROMEParams(),
               shares: torch.Tensor | None = None) -> dict[str, float]:
    """The terms of optimise_delta's loss at a given delta (for checks): {"nll", "kl", "decay", "loss"}."""
    with frozen(model), torch.no_grad():
        nll, kl, decay = _Problem(model, request, contexts, layer, module, v0, params, shares).terms(delta)
    return {"nll": float(nll), "kl": float(kl), "decay": float(decay),
            "loss": float(nll + params.kl_weight * kl + decay)}


def optimise_delta(model, request: EditRequest, contexts: Sequence[str], layer: int, module: nn.Module,
                   v0: torch.Tensor | None, params: ROMEParams = ROMEParams(),
                   shares: torch.Tensor | None = None) -> ValueResult:
    """Find delta (d_model,) added to `module`'s output at the subject's last token (see module docstring).
    `layer` is the block that holds `module`; v0 is the unedited value there (sets the norm scale); None
    takes the value at the bare prompt (contexts[0]), as the reference's target_init.
    shares (len(contexts) + 1,): the fraction of delta each prompt (the prefixed prompts, then the KL
    prompt) receives; None gives every prompt all of it."""
    reference_loop = params.early_stop == "loss"
    with frozen(model):
        problem = _Problem(model, request, contexts, layer, module, v0, params, shares)
        delta = torch.zeros(model.cfg.d_model, device=model.device, requires_grad=True)
        opt = torch.optim.Adam([delta], lr=params.lr)
        nll_before = nll_val = float("nan")
        step = 0
        for step in range(1, params.steps + 1):
            opt.zero_grad()
            nll, kl, decay = problem.terms(delta)
            loss = nll + params.kl_weight * kl + decay
            nll_val = float(nll.detach())
            if step == 1:
                nll_before = nll_val
            if (float(loss.detach()) if reference_loop else nll_val) < params.early_stop_nll:
                break
            if reference_loop and step == params.steps:  # the reference evaluates its last step without updating
                break
            loss.backward()
            opt.step()
            with torch.no_grad():  # the norm constraint: a projection after every step
                limit = params.clamp_norm_factor * problem.v0_norm
                if delta.norm() > limit:
                    delta.mul_(limit / delta.norm())
    return ValueResult(delta.detach().clone(), problem.v0_norm, nll_before, nll_val, step, problem.v0.detach().clone())
