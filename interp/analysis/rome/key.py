"""Requests, prefixed contexts, the subject's last token, and the key k* (ROME section 3.1, step 1).

The key is the FFN hidden vector (hook_post, the input of W_out) at the subject's last token. One
prompt gives a noisy key; ROME averages over the bare prompt and short prefixed variants, "<text>. "
+ prompt, where the texts are sampled from the model itself (10 of 5 tokens and 10 of 10, top-k 5,
seeded). The same contexts serve the value optimisation, and the same k* is used everywhere in the
update (r-ROME, Gupta et al. 2024: mixing keys is what makes sequential ROME collapse). By default the
update is also fitted to the bare prompt's own key (edit.py explains why).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interp.errors import EditError
from interp.interventions import capture, intervene
from interp.model import hook_names
from interp.model.generate import generate
from interp.model.tokenize import answer_ids, subject_tokens

CONTEXT_OPENERS = ("The", "Therefore", "Because", "I", "You")


@dataclass(frozen=True)
class EditRequest:
    """Rewrite: prompt.format(subject) should be continued by target_new (stored without a leading space)."""

    prompt: str  # holds exactly one "{}" where the subject goes
    subject: str
    target_new: str
    target_true: str | None = None
    case_id: int | str | None = None

    def __post_init__(self) -> None:
        if not self.subject.strip():
            raise EditError("The subject is empty; give the words the fact is about.")
        if "{}" not in self.prompt:
            if self.subject in self.prompt:
                hint = self.prompt.replace(self.subject, "{}", 1)
                raise EditError(f"The prompt has no '{{}}' where the subject goes; write it as {hint!r}.")
            raise EditError(
                f"The subject {self.subject!r} is not in the prompt, and the prompt has no '{{}}' to put it in.")
        if self.prompt.count("{}") != 1:
            raise EditError("The prompt must contain exactly one '{}' (where the subject goes).")
        if not self.target_new.strip():
            raise EditError("The target is empty; give the new answer, e.g. --target Rome.")

    @property
    def text(self) -> str:
        return self.prompt.replace("{}", self.subject)

    @classmethod
    def from_fact(cls, fact) -> EditRequest:
        """From an interp.analysis.facts.records.FactRecord."""
        return cls(fact.prompt, fact.subject, fact.target_new.strip(), fact.target_true.strip(), fact.case_id)

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "subject": self.subject, "target_new": self.target_new,
                "target_true": self.target_true, "case_id": self.case_id}


def target_ids(model, target: str) -> list[int]:
    """Token ids of " " + target (CounterFact targets are stored without the leading space)."""
    return answer_ids(model, target, error=EditError)


def encode_with_subject(model, template: str, subject: str) -> tuple[list[int], int]:
    """Token ids of template.format(subject) and the index of the subject's last token in them."""
    span = subject_tokens(model, template, subject, error=EditError)
    return span.ids, span.last


def pad_left(model, seqs: Sequence[list[int]],
             indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded (tokens, mask) (b, p) and the given per-sequence indices shifted by the padding (b,)."""
    tokens, mask = model.pad_left(seqs)
    n = tokens.shape[1]
    shifted = torch.tensor([n - len(s) + i for s, i in zip(seqs, indices)])
    return tokens, mask, shifted.to(model.device)


@torch.no_grad()
def context_templates(model, lengths: tuple[tuple[int, int], ...] = ((5, 10), (10, 10)), seed: int = 0,
                      cache=None) -> list[str]:
    """["{}"] + ["<sampled text>. {}", ...]: the bare prompt and short prefixed variants, sampled from the
    model (top-k 5, seeded), cached on disk beside the statistics (`cache`: a covariance.StatsCache)."""
    from interp.analysis.rome.covariance import StatsCache

    path = (cache or StatsCache()).folder(model) / f"contexts-s{seed}-{'_'.join(f'{a}x{b}' for a, b in lengths)}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    out = ["{}"]
    for i, (length, count) in enumerate(lengths):
        openers = [CONTEXT_OPENERS[j % len(CONTEXT_OPENERS)] for j in range(count)]
        texts = generate(model, openers, max_new_tokens=length, temperature=1.0, top_k=5, seed=seed * 1000 + i)
        for opener, cont in zip(openers, texts):
            text = (opener + cont).replace("{", " ").replace("}", " ").replace("\n", " ").strip()
            out.append(text + ". {}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out))
    except OSError:
        pass
    return out


def prefixed(contexts: Sequence[str], prompt: str) -> list[str]:
    """Each context with the request's prompt template in its slot (the subject's "{}" kept)."""
    return [c.replace("{}", prompt) for c in contexts]


@torch.no_grad()
def subject_states(model, templates: Sequence[str], subjects: Sequence[str], names: Sequence[str],
                   stop_at_layer: int) -> dict[str, torch.Tensor]:
    """The activations `names` at each (template, subject)'s last subject token: {name: (n, d)}."""
    seqs, idxs = zip(*(encode_with_subject(model, t, s) for t, s in zip(templates, subjects)))
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    bs = 32
    for start in range(0, len(seqs), bs):
        tokens, mask, idx = pad_left(model, seqs[start:start + bs], idxs[start:start + bs])
        store: dict = {}
        with intervene(model, capture(list(names), store)):
            model(tokens, attention_mask=mask, stop_at_layer=stop_at_layer)
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        for n in names:
            out[n].append(store[n][rows, idx].float())
    return {n: torch.cat(v) for n, v in out.items()}


def subject_keys(model, request: EditRequest, layer: int, contexts: Sequence[str],
                 *extra_templates: str) -> torch.Tensor:
    """hook_post at `layer` at the subject's last token in every prefixed prompt, then in each extra
    template: (len(contexts) + len(extra_templates), d_mlp). k* is the mean of the prefixed rows."""
    name = hook_names.mlp_post(layer)
    templates = prefixed(contexts, request.prompt) + list(extra_templates)
    return subject_states(model, templates, [request.subject] * len(templates), [name], layer + 1)[name]
