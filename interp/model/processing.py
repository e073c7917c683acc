"""TransformerLens' weight processing, on request: the weights `TransformerBridge.enable_compatibility_mode()`
(and HookedTransformer's default loading) compute, so TL's attribution recipes read the right numbers.

interp loads the checkpoint's weights unchanged. TL users expect, for example,
`resid / cache['ln_final.hook_scale'] @ W_U[:, tok]` to be the logit of `tok`; that holds only once the final
norm's weight is folded into `W_U`. `process_weights(model)` does what TL does, per norm kind
(`transformer_lens/weight_processing.py`, `ProcessWeights.process_weights`):

- **fold_ln**: each pre-norm's weight is multiplied into the matrices that read it (ln1 into W_Q, W_K, W_V;
  ln2 into W_in and W_gate; ln_final into W_U) and set to 1, so the norms compute TL's weightless
  `LNPre` / `RMSPre`. LayerNorm (GPT-2, GPT-NeoX) also folds its bias into the readers' biases (created
  where the family has none) and centres the readers' weights over d_model (the input is zero-mean, so
  this changes nothing); only W_in of an MLP is centred, as TL does. RMSNorm: weights only, no centring.
  Gemma's (1 + w) is stored as the effective scale here, so it folds like any RMSNorm. Sandwich post-norms
  (Gemma-2/3 ln1_post, ln2_post) and Q/K norms are left as they are (TL: "independent normalization").
  Post-norm-only families (OLMo-2) fold nothing, as TL's adapter declares (its fold_ln is unsupported).
- **center_writing_weights** (LayerNorm families only, as TL): W_E, W_pos, W_O, b_O, W_out, b_out minus their
  mean over d_model; every reader of the residual stream is a LayerNorm, which removes the mean anyway.
- **center_unembed**: W_U (and b_U) minus the mean over the vocabulary; logits move by one constant per
  position, which softmax ignores. Skipped with a final logit soft-cap (tanh is not shift-invariant), as TL.
- **fold_value_biases**: sum over heads of b_V W_O added to b_O, b_V set to 0 (patterns sum to 1).

Tied embeddings are untied first (TL clones the unembedding), so folding and centring W_U leave W_E alone. The
result is recorded in `model.processing` and `model.cfg.extra["weight_processing"]`; the weight cache on disk
is never touched (this runs on the loaded model).

Edits (ROME, MEMIT) work on processed weights: the MLP keys they read (hook_post), the value they add at an
MLP's output and the log-probs they score are all unchanged. An edit file made on the checkpoint applies to an
RMSNorm model's processed weights (W_out is not touched) and is refused by a LayerNorm model's (W_out centred).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from interp.errors import InvalidInputError
from interp.model.components.norm import LayerNorm, RMSNorm

EXTRA_KEY = "weight_processing"


@dataclass(frozen=True)
class Processing:
    """Which of TransformerLens' weight transformations the loaded weights carry (all False: the checkpoint)."""

    fold_ln: bool = False
    center_writing_weights: bool = False
    center_unembed: bool = False
    fold_value_biases: bool = False

    def __bool__(self) -> bool:
        return any(dataclasses.astuple(self))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        if not self:
            return "unprocessed (the checkpoint's weights)"
        done = [k for k, v in self.to_dict().items() if v]
        return f"processed as TransformerLens does ({', '.join(done)})"


UNPROCESSED = Processing()
OPTIONS = tuple(f.name for f in dataclasses.fields(Processing)) + ("refactor_factored_attn_matrices",)


def processing_of(model) -> Processing:
    """What `model`'s weights carry: `model.processing`, else what its config records, else unprocessed."""
    found = getattr(model, "processing", None)
    if isinstance(found, Processing):
        return found
    recorded = getattr(getattr(model, "cfg", None), "extra", None) or {}
    return Processing(**recorded[EXTRA_KEY]) if EXTRA_KEY in recorded else UNPROCESSED


class ProcessedUnembed(nn.Module):
    """The unembedding after processing: its own (untied) rows, and the bias b_U that folding a LayerNorm's bias
    creates. Same interface as `Unembed` (`weight`, `W_U`, forward)."""

    tied = False

    def __init__(self, rows: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.W_U_rows = nn.Parameter(rows)  # (vocab, d_model)
        self.b_U = None if bias is None else nn.Parameter(bias)  # (vocab,)

    @property
    def weight(self) -> torch.Tensor:
        return self.W_U_rows

    @property
    def W_U(self) -> torch.Tensor:
        return self.W_U_rows.T  # (d_model, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.W_U_rows, None if self.b_U is None else self.b_U.to(x.dtype))


def process_weights(model, fold_ln: bool = True, center_writing_weights: bool = True, center_unembed: bool = True,
                    fold_value_biases: bool = True, refactor_factored_attn_matrices: bool = False) -> Processing:
    """TransformerLens' `process_weights` with its options and defaults, in place; returns what was applied
    (TL's per-architecture restrictions included). A second call changes nothing (TL warns and skips too)."""
    if refactor_factored_attn_matrices:
        raise InvalidInputError("refactor_factored_attn_matrices is not supported by interp's weight processing; "
                                "leave it False (TransformerLens' default).")
    if processing_of(model):
        warnings.warn(f"The weights of {model.cfg.name} are already processed; loading it again is the way to "
                      "process them with other options.", UserWarning, stacklevel=2)
        return processing_of(model)
    cfg = model.cfg
    layer_norm = cfg.norm == "layer"
    if fold_ln and not cfg.pre_norm:
        warnings.warn(f"{cfg.name} normalises only the sub-blocks' outputs, so its norms are not folded "
                      "(TransformerLens does not fold them either).", UserWarning, stacklevel=2)
        fold_ln = False
    if center_unembed and cfg.final_logit_softcap:
        center_unembed = False  # TL: centring would change a soft-capped model's outputs
    center_writing_weights = center_writing_weights and layer_norm and cfg.pre_norm
    with torch.no_grad():
        _untie(model)
        if fold_ln:
            for block in model.blocks:
                _fold_attention_norm(block, layer_norm)
                _fold_mlp_norm(block, layer_norm)
            _fold_final_norm(model, layer_norm)
        if center_writing_weights:
            _center_writing(model)
        if center_unembed:
            _center_unembed(model)
        if fold_value_biases:
            for block in model.blocks:
                _fold_value_bias(block, center=center_writing_weights)
    done = Processing(fold_ln, center_writing_weights, center_unembed, fold_value_biases)
    _record(model, done)
    return done


def _record(model, done: Processing) -> None:
    """The config says which weights these are (and that embeddings are no longer tied, and which biases now
    exist), so `--json` output, caches and exports see it."""
    blocks = list(model.blocks)
    changes = dict(tie_embeddings=False, extra={**(model.cfg.extra or {}), EXTRA_KEY: done.to_dict()},
                   qkv_bias=blocks[0].attn.b_q is not None, out_bias=blocks[0].attn.b_o is not None,
                   mlp_bias=blocks[0].mlp.b_in is not None)
    model.cfg = model.cfg.replace(**changes)
    model.processing = done


def _work(t: torch.Tensor) -> torch.Tensor:
    """A float copy at least float32 (TL upcasts to float32 to fold; bf16 products would round)."""
    return t.detach().to(torch.promote_types(t.dtype, torch.float32))


def _put(param: nn.Parameter, value: torch.Tensor) -> None:
    param.copy_(value.to(device=param.device, dtype=param.dtype))


def _new_bias(like: torch.Tensor, n: int) -> nn.Parameter:
    return nn.Parameter(torch.zeros(n, dtype=like.dtype, device=like.device))


def _untie(model) -> None:
    """Give the unembedding its own copy of the rows (a tied W_E stays the checkpoint's), in a module that can
    hold a bias."""
    old = model.unembed
    if isinstance(old, ProcessedUnembed):
        return
    model.unembed = ProcessedUnembed(old.weight.detach().clone())


def _norm_parts(norm: nn.Module, target: torch.Tensor, layer_norm: bool):
    """(weight, bias or None) of a foldable norm in float32+ on the target's device; None for no norm."""
    if not isinstance(norm, (RMSNorm, LayerNorm)):
        return None
    w = _work(norm.w).to(target.device)
    b = _work(norm.b).to(target.device) if layer_norm else None
    return w, b


def _reset(norm: nn.Module) -> None:
    """The norm becomes weightless (TL's LNPre / RMSPre): scale 1, shift 0."""
    norm.w.fill_(1.0)
    if isinstance(norm, LayerNorm):
        norm.b.zero_()


def _fold_into(readers: list[tuple[nn.Module, str, str]], w: torch.Tensor, b: torch.Tensor | None,
               centre: set[str]) -> None:
    """Each (module, weight name, bias name) reads the norm's output with an (out, d_model) weight: the bias
    becomes bias + W b (created where missing) and the weight W * w, centred over d_model where TL does."""
    for module, w_name, b_name in readers:
        weight = getattr(module, w_name)
        if weight is None:
            continue
        original = _work(weight)
        if b is not None:
            if getattr(module, b_name) is None:
                setattr(module, b_name, _new_bias(weight, weight.shape[0]))
            bias = getattr(module, b_name)
            _put(bias, _work(bias) + original @ b)
        folded = original * w
        if w_name in centre:
            folded = folded - folded.mean(1, keepdim=True)
        _put(weight, folded)


def _fold_attention_norm(block, layer_norm: bool) -> None:
    attn = block.attn
    parts = _norm_parts(block.ln1, attn.w_q, layer_norm)
    if parts is None:
        return
    centre = {"w_q", "w_k", "w_v"} if layer_norm else set()
    _fold_into([(attn, "w_q", "b_q"), (attn, "w_k", "b_k"), (attn, "w_v", "b_v")], *parts, centre)
    _reset(block.ln1)


def _fold_mlp_norm(block, layer_norm: bool) -> None:
    mlp = block.mlp
    parts = _norm_parts(block.ln2, mlp.w_in, layer_norm)
    if parts is None:
        return
    centre = {"w_in"} if layer_norm else set()  # TL centres W_in, not W_gate
    _fold_into([(mlp, "w_in", "b_in"), (mlp, "w_gate", "b_gate")], *parts, centre)
    if layer_norm and mlp.b_out is None:  # keep the config's one mlp_bias flag true to the parameters
        mlp.b_out = _new_bias(mlp.w_out, mlp.w_out.shape[0])
    if layer_norm and mlp.gated and mlp.b_gate is None:
        mlp.b_gate = _new_bias(mlp.w_gate, mlp.w_gate.shape[0])
    _reset(block.ln2)


def _fold_final_norm(model, layer_norm: bool) -> None:
    """ln_final into W_U; a LayerNorm's bias becomes b_U (computed with the unfolded W_U, as TL)."""
    unembed = model.unembed
    w, b = _norm_parts(model.ln_final, unembed.W_U_rows, layer_norm)
    rows = _work(unembed.W_U_rows)
    if b is not None:
        unembed.b_U = _new_bias(unembed.W_U_rows, rows.shape[0])
        _put(unembed.b_U, rows @ b)
    folded = rows * w
    if layer_norm:
        folded = folded - folded.mean(1, keepdim=True)
    _put(unembed.W_U_rows, folded)
    _reset(model.ln_final)


def _centred(p: nn.Parameter | None, dim: int) -> None:
    if p is not None:
        _put(p, _work(p) - _work(p).mean(dim, keepdim=True))


def _center_writing(model) -> None:
    """Everything that writes into the residual stream, minus its mean over d_model."""
    _centred(model.embed.W_E, -1)
    if model.pos_embed is not None:
        _centred(model.pos_embed.W_pos, -1)
    for block in model.blocks:
        _centred(block.attn.w_o, 0)  # (d_model, h * d)
        _centred(block.attn.b_o, 0)
        _centred(block.mlp.w_out, 0)  # (d_model, d_mlp)
        _centred(block.mlp.b_out, 0)


def _center_unembed(model) -> None:
    _centred(model.unembed.W_U_rows, 0)  # over the vocabulary
    _centred(model.unembed.b_U, 0)


def _fold_value_bias(block, center: bool) -> None:
    """b_O += sum over heads of b_V W_O (each query head reads its key/value head's bias); b_V = 0."""
    attn = block.attn
    if attn.b_v is None:
        return
    cfg = attn.cfg
    b_v = _work(attn.b_v).view(cfg.n_kv_heads, cfg.d_head).repeat_interleave(cfg.group_size, dim=0)
    added = _work(attn.w_o) @ b_v.reshape(-1).to(attn.w_o.device)  # (d_model,)
    if attn.b_o is None:
        attn.b_o = _new_bias(attn.w_o, attn.w_o.shape[0])
    b_o = _work(attn.b_o) + added
    _put(attn.b_o, b_o - b_o.mean() if center else b_o)
    attn.b_v.zero_()
