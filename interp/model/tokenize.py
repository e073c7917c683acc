"""Text -> token ids the way every analysis needs them: the BOS rule, a subject's token span, an answer's tokens.

Written once so that causal tracing, knowledge neurons, ROME and the recall prompts agree on where a
subject sits and which tokens an answer is:

- BOS: a model gets a BOS token in front exactly when its config says it is used with one
  (``cfg.default_prepend_bos``, e.g. Gemma; SmolLM2 is not) -- the rule of `Transformer.encode`.
  Analyses that need a fixed first token whatever the model (induction's ``[BOS] + r + r``) use
  `sink_token`: BOS when the model has one, else token 0.
- A subject inside a prompt template ("The {} is located in"): the tokens whose characters overlap the
  subject, found from the tokenizer's character offsets (a fast tokenizer), counted after the BOS.
- An answer follows the prompt after a space: its tokens are those of ``" " + answer.strip()``, without
  special tokens (CounterFact stores targets without the leading space).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interp.errors import InterpError, InvalidInputError


def bos_prefix(model) -> list[int]:
    """[BOS] when the model is used with one, else []: what `Transformer.encode` puts in front."""
    bos = model.cfg.bos_token_id
    return [bos] if model.cfg.default_prepend_bos and bos is not None else []


def sink_token(model) -> int:
    """BOS when the model has one (whether or not it is used by default); otherwise token 0."""
    return model.cfg.bos_token_id if model.cfg.bos_token_id is not None else 0


def text_ids(model, text: str) -> list[int]:
    """Token ids of `text` without any special token."""
    return list(model.tokenizer(text, add_special_tokens=False)["input_ids"])


def answer_ids(model, answer: str, error: type[InterpError] = InvalidInputError) -> list[int]:
    """Token ids of ``" " + answer.strip()``: the answer as it follows a prompt."""
    if not answer or not answer.strip():
        raise error("The target is empty; give the answer's text, e.g. Paris.")
    ids = text_ids(model, " " + answer.strip())
    if not ids:
        raise error(f"The target {answer!r} tokenizes to nothing; give a word.")
    return ids


@dataclass(frozen=True)
class SubjectTokens:
    """A filled-in template as token ids, BOS rule applied, and where the subject's tokens are."""

    text: str  # template with the subject filled in
    ids: list[int]
    start: int  # first subject token
    end: int  # one past the last subject token

    @property
    def last(self) -> int:
        """The subject's last token (ROME's key position)."""
        return self.end - 1


def subject_tokens(model, template: str, subject: str, error: type[InterpError] = InvalidInputError) -> SubjectTokens:
    """Token ids of ``template`` with its one "{}" replaced by `subject`, and the subject's token span."""
    if not subject or not subject.strip():
        raise error("The subject is empty; give the words the fact is about.")
    if template.count("{}") != 1:
        raise error(f"The prompt {template!r} must contain exactly one '{{}}' where the subject goes.")
    text = template.replace("{}", subject)
    start_char = template.index("{}")
    end_char = start_char + len(subject)
    enc = model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    bos = bos_prefix(model)
    inside = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a < end_char and b > start_char]
    if not inside:
        raise error(f"The subject {subject!r} maps to no token of {text!r}.")
    return SubjectTokens(text, bos + list(enc["input_ids"]), len(bos) + inside[0], len(bos) + inside[-1] + 1)


# -- TransformerLens-style batches ------------------------------------------------------------------------
# `Transformer.to_tokens` pads several texts the way TransformerLens does: on the tokenizer's padding side
# (right for SmolLM2, left for Gemma) unless told. A padded batch must give every row the logits it gets
# alone, so the model needs to know which ids are padding. Two sources, in this order:
#
# 1. Remembered: tensors made by `to_tokens`, `to_batch` or `pad_left` carry their mask (an attribute on
#    that very tensor object). A new tensor made from one (a slice, `.clone()`, `torch.cat`) does not.
# 2. Inferred from pad ids (TransformerLens' `get_attention_mask` rule): a run of `cfg.pad_token_id` at the
#    start of a row is left padding. When BOS and pad are one id and the model prepends BOS, the last id of
#    that run is the BOS and stays. Trailing pad ids are left alone unless `padding_side="right"` is given:
#    they cannot change any earlier position's logits (attention is causal), and a real final token that
#    happens to be the pad id (SmolLM2's pad is its end-of-text) must keep its own logits. A real text that
#    starts with the pad id is the ambiguous case; pass `attention_mask` to say what is real.

_MASK_ATTR = "_interp_attention_mask"
TL_PREPEND_BOS = True  # TransformerLens prepends BOS unless told otherwise


def remember_mask(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Attach `mask` (b, p) to this `tokens` tensor object, so the model finds it when given the tensor."""
    setattr(tokens, _MASK_ATTR, mask.bool())
    return tokens


def remembered_mask(tokens: torch.Tensor) -> torch.Tensor | None:
    mask = getattr(tokens, _MASK_ATTR, None)
    if mask is None or mask.shape != tokens.shape:
        return None
    return mask.to(tokens.device)


def infer_mask(model, tokens: torch.Tensor, padding_side: str | None = None) -> torch.Tensor | None:
    """(b, p) mask of the real tokens read off the pad ids (see the rule above); None when nothing is padding."""
    pad = model.cfg.pad_token_id
    if pad is None or tokens.dim() != 2 or tokens.is_floating_point():
        return None
    real = tokens != pad  # (b, p)
    if padding_side == "right":
        padding = real.flip(1).cumsum(1).flip(1) == 0  # (b, p) no real token at or after this position
    else:
        padding = real.cumsum(1) == 0  # (b, p) no real token at or before this position
        if model.cfg.bos_token_id == pad and model.cfg.default_prepend_bos:
            last = padding.sum(1) - 1  # (b,) the BOS closing each row's leading run
            rows = torch.nonzero(last >= 0)[:, 0]
            padding[rows, last[rows]] = False
    return None if not bool(padding.any()) else ~padding


def mask_for(model, tokens: torch.Tensor, padding_side: str | None = None) -> torch.Tensor | None:
    """The mask the model uses for a token tensor given without one: remembered, else inferred."""
    if padding_side not in (None, "left", "right"):
        raise InvalidInputError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
    mask = remembered_mask(tokens)
    return mask if mask is not None else infer_mask(model, tokens, padding_side)


def bos_rule_differs(model) -> bool:
    """True when the model's BOS default is not TransformerLens' (SmolLM2: no BOS; TL would prepend one)."""
    return model.cfg.bos_token_id is not None and model.cfg.default_prepend_bos != TL_PREPEND_BOS


def warn_bos_once(model) -> None:
    """Say once per model that interp follows the tokenizer's BOS rule where TransformerLens would not."""
    if not bos_rule_differs(model) or getattr(model, "_warned_bos", False):
        return
    model._warned_bos = True
    warnings.warn(
        f"{model.cfg.name} is tokenized without a BOS token (its tokenizer's rule); TransformerLens would "
        "prepend one (prepend_bos=True), shifting every position by one. Pass prepend_bos=True for "
        "TransformerLens' behaviour, or prepend_bos=False to keep this one and silence the warning.",
        UserWarning, stacklevel=3,
    )


def padded(model, ids: Sequence[Sequence[int]], side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> (tokens, mask), both (b, longest), padded on `side` with the pad id (0 if none)."""
    if side not in ("left", "right"):
        raise InvalidInputError(f"padding_side must be 'left' or 'right', got {side!r}.")
    n = max(len(i) for i in ids)
    pad = model.cfg.pad_token_id if model.cfg.pad_token_id is not None else 0
    tokens = torch.full((len(ids), n), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), n), dtype=torch.bool)
    for row, seq in enumerate(ids):
        span = slice(n - len(seq), n) if side == "left" else slice(0, len(seq))
        tokens[row, span] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, span] = True
    return tokens, mask


def tl_batch(model, input, prepend_bos: bool | None, padding_side: str | None,
             truncate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """`to_tokens`' work: texts -> (tokens, mask) with the BOS rule, truncated to n_ctx, padded on the side
    TransformerLens would pad (the tokenizer's `padding_side`, else right)."""
    if prepend_bos is None:
        warn_bos_once(model)
    texts = [input] if isinstance(input, str) else list(input)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidInputError("to_tokens takes a text or a list of texts.")
    ids = [model.encode(t, prepend_bos) for t in texts]
    if truncate:
        ids = [i[: model.cfg.n_ctx] for i in ids]
    side = padding_side or getattr(model.tokenizer, "padding_side", None) or "right"
    return padded(model, ids, side)
