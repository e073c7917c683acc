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

from dataclasses import dataclass

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
