"""Prompts for the "lost in the middle" recall tasks, and how answers are scored (Liu et al., TACL 2024).

Liu et al. ask whether a language model uses information equally well wherever it sits in a long
prompt. Each task hides exactly one relevant item among k items and moves it from the first position
to the last: in multi-document QA the items are k search results and one of them answers the
question; in key-value retrieval the items are the k pairs of a JSON object and the model must copy
the value of one key. Accuracy against the gold position is U-shaped for most models (best at the
start and the end, worst in the middle). Two variations move the curve: query-aware contextualisation
(the question also placed before the context) and, a mitigation we add, the gold item repeated at
the end of the context.

`RecallExample` is one such prompt as a typed record. It renders the paper's templates exactly
(github.com/nelson-liu/lost-in-the-middle, `src/lost_in_the_middle/prompting.py`), moves its gold
item for a position sweep (`with_gold_at`) and knows the character span of every item, so analyses
can find an item's tokens (`locate_tokens`) and teacher-force an answer (`answer_token_ids`).
Answers are scored as in the paper's `evaluate_qa_responses.py` (`is_correct`): SQuAD normalisation,
then "some gold answer is a substring of the first line of the prediction". Examples come from
`interp.analysis.recall.loaders`: seeded synthetic generators, or the paper's released files.

Paper: N. F. Liu, K. Lin, J. Hewitt, A. Paranjape, M. Bevilacqua, F. Petroni, P. Liang,
"Lost in the Middle: How Language Models Use Long Contexts", TACL 12 (2024), arXiv:2307.03172.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from interp.errors import InvalidInputError

Span = tuple[int, int]  # [start, end) in characters or tokens

TASKS = ("kv", "kv-words", "qa")
KV_INSTRUCTION = "Extract the value corresponding to the specified key in the JSON object below."
QA_INSTRUCTION = (
    "Write a high-quality answer for the given question using only the provided search results "
    "(some of which might be irrelevant)."
)


def render_kv_item(key: str, value: str) -> str:
    """One pair of the JSON object, as the paper writes it: `"key": "value"`."""
    return f'"{key}": "{value}"'


def render_qa_item(number: int, title: str, text: str) -> str:
    """One search result; `number` is 1-based, as in the paper: `Document [n](Title: t) text`."""
    return f"Document [{number}](Title: {title}) {text}"


@dataclass(frozen=True)
class PromptLayout:
    """A rendered prompt and where its parts are, as [start, end) character spans of `text`."""

    text: str
    item_spans: tuple[Span, ...]  # one per context item, in order
    repeat_span: Span | None  # the repeated gold item at the end of the context, if any
    question_spans: tuple[Span, ...]  # the question (QA) or key (KV) text: once, or twice if query-aware


class _Builder:
    """Concatenates prompt pieces and remembers where each one landed."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0

    def add(self, piece: str) -> Span:
        start = self.length
        self.parts.append(piece)
        self.length += len(piece)
        return (start, self.length)

    def add_joined(self, pieces: Sequence[str], separator: str) -> list[Span]:
        """Add `separator.join(pieces)`; return the span of each piece."""
        spans = []
        for i, piece in enumerate(pieces):
            if i:
                self.add(separator)
            spans.append(self.add(piece))
        return spans

    def text(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True)
class RecallExample:
    """One recall prompt: k context items, one of which (the gold item) holds the answer.

    `records` holds the raw content of each item in context order: (key, value) for the KV tasks,
    (title, text) for QA. `items` is derived from it: the rendered text of each item (QA documents
    are numbered by position, so moving the gold document renumbers them). For KV, `question` is the
    key to look up (without quotes) and `answers` is `(value,)`. `example_id` names the base
    content: every position of one sweep shares it, so (example_id, gold_position) is unique.
    Options can be changed with `dataclasses.replace(example, query_aware=True)`.
    """

    task: str  # "kv", "kv-words" or "qa"
    records: tuple[tuple[str, str], ...]
    gold_position: int  # 0-based index of the gold item
    instruction: str
    question: str
    answers: tuple[str, ...]
    query_aware: bool = False  # question (or key) also placed before the context
    repeat_gold: bool = False  # gold item repeated after the last item (a mitigation)
    example_id: str = ""
    items: tuple[str, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task = {self.task!r} must be one of {', '.join(TASKS)}")
        if not self.records:
            raise ValueError("a recall example needs at least one context item")
        if not 0 <= self.gold_position < len(self.records):
            raise ValueError(f"gold_position = {self.gold_position} is outside 0..{len(self.records) - 1}")
        if not self.question or not self.answers or not all(self.answers):
            raise ValueError("a recall example needs a question and at least one non-empty answer")
        if self.is_kv and self.records[self.gold_position][0] != self.question:
            raise ValueError(f"the gold pair's key is not the question key {self.question!r}")
        items = tuple(self._render_item(i, r) for i, r in enumerate(self.records))
        object.__setattr__(self, "items", items)  # derived, so frozen-ness is kept

    @property
    def is_kv(self) -> bool:
        return self.task in ("kv", "kv-words")

    @property
    def n_items(self) -> int:
        return len(self.records)

    @property
    def gold_item(self) -> str:
        return self.items[self.gold_position]

    def _render_item(self, index: int, record: tuple[str, str]) -> str:
        return render_kv_item(*record) if self.is_kv else render_qa_item(index + 1, *record)

    def layout(self) -> PromptLayout:
        """Render the prompt and record the span of every item and of the question."""
        b = _Builder()
        b.add(self.instruction + "\n\n")
        questions: list[Span] = []
        repeat: Span | None = None
        gold_record = self.records[self.gold_position]
        if self.is_kv:
            # '{"k1": "v1",\n "k2": "v2"}' exactly as the paper's formatter writes the object
            if self.query_aware:
                b.add('Key: "')
                questions.append(b.add(self.question))
                b.add('"\n\n')
            b.add("JSON data:\n{")
            spans = b.add_joined(self.items, ",\n ")
            if self.repeat_gold:
                b.add(",\n ")
                repeat = b.add(render_kv_item(*gold_record))
            b.add('}\n\nKey: "')
            questions.append(b.add(self.question))
            b.add('"\nCorresponding value:')
        else:
            if self.query_aware:
                b.add("Question: ")
                questions.append(b.add(self.question))
                b.add("\n\n")
            spans = b.add_joined(self.items, "\n")
            if self.repeat_gold:
                b.add("\n")
                repeat = b.add(render_qa_item(self.n_items + 1, *gold_record))
            b.add("\n\nQuestion: ")
            questions.append(b.add(self.question))
            b.add("\nAnswer:")
        return PromptLayout(b.text(), tuple(spans), repeat, tuple(questions))

    def prompt(self) -> str:
        """The full prompt, ending where the model starts answering (`...value:` / `...Answer:`)."""
        return self.layout().text

    def item_char_spans(self) -> list[Span]:
        """[start, end) character spans of `items` in `prompt()`, one per item (not the repeat)."""
        return list(self.layout().item_spans)

    def gold_char_spans(self) -> list[Span]:
        """Spans of the gold item in `prompt()`: its own, then the repeat's when `repeat_gold`."""
        lay = self.layout()
        return [lay.item_spans[self.gold_position]] + ([lay.repeat_span] if lay.repeat_span else [])

    def question_char_spans(self) -> list[Span]:
        """Spans of the question (QA) or key (KV) text: the final one last."""
        return list(self.layout().question_spans)

    def with_gold_at(self, position: int) -> RecallExample:
        """A copy with the gold item moved to `position` (negative counts from the end).

        As in the paper's scripts, the gold item is popped and re-inserted, so the distractors keep
        their relative order.
        """
        k = self.n_items
        if not -k <= position < k:
            raise InvalidInputError(f"Gold position {position} is out of range for {k} items (0 to {k - 1}).")
        position %= k
        records = list(self.records)
        records.insert(position, records.pop(self.gold_position))
        return dataclasses.replace(self, records=tuple(records), gold_position=position)


# --- tokens -------------------------------------------------------------------------------------


def locate_tokens(
    tokenizer: Any, text: str, char_spans: Sequence[Span], *, add_special_tokens: bool = True
) -> list[Span]:
    """Map character spans of `text` to [start, end) token index ranges.

    A token belongs to a span when its characters overlap it, so a token such as ' "' that straddles
    the span's edge is included and decoding the range gives back text containing the span. Indices
    count every token the tokenizer produces for `text` with `add_special_tokens` (a BOS token, if
    the tokenizer adds one, is index 0): tokenize the prompt the same way for the forward pass.
    Needs a Hugging Face *fast* tokenizer (one that returns an offsets mapping).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError("locate_tokens needs a fast tokenizer, which can return character offsets.")
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True,
                    return_special_tokens_mask=True)
    starts: list[int] = []
    ends: list[int] = []
    for (a, b), special in zip(enc["offset_mapping"], enc["special_tokens_mask"]):
        if special:  # (0, 0) offsets: pin to the previous token's end so both lists stay sorted
            a = b = ends[-1] if ends else 0
        starts.append(a)
        ends.append(b)
    ranges = []
    for s, e in char_spans:
        if not 0 <= s < e <= len(text):
            raise InvalidInputError(
                f"Character span ({s}, {e}) is empty or outside the text of {len(text)} characters."
            )
        first = bisect.bisect_right(ends, s)  # first token ending after s
        last = bisect.bisect_left(starts, e)  # first token starting at or after e
        ranges.append((first, last))
    return ranges


def answer_token_ids(tokenizer: Any, answer: str, *, prefix: str = " ") -> list[int]:
    """Token ids of `prefix + answer` without special tokens, to append to the prompt for teacher forcing.

    Prompts end with ':' and a model answers after a space, hence the default prefix " ".
    """
    ids = list(tokenizer(prefix + answer, add_special_tokens=False)["input_ids"])
    if not answer.strip() or not ids:
        raise InvalidInputError(f"The answer {answer!r} tokenizes to nothing.")
    return ids


# --- scoring ------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation, drop the articles a/an/the, squash whitespace."""
    s = s.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", s).split())


def is_correct(prediction: str, answers: Sequence[str]) -> bool:
    """True when some normalised gold answer is a substring of the normalised first line of `prediction`.

    Only the first line counts, as in the paper, so a model cannot score by copying the context (a
    prediction that starts with a newline therefore scores nothing, as there).
    Unlike the paper's code, an answer that normalises to nothing (say "The") matches nothing rather
    than everything.
    """
    first_line = normalize_answer(prediction.split("\n")[0])
    return any(a and a in first_line for a in map(normalize_answer, answers))
