"""Seeded generators of lost-in-the-middle examples (Liu et al. 2024's tasks, and variants a 135M model can do).

Three generators make synthetic `RecallExample`s, deterministic under a seed: UUID key/value pairs as
in the paper (`make_kv_examples`), single common words that a 135M model can copy
(`make_word_kv_examples`), and multi-document QA over invented facts whose answer occurs only in the
gold document (`make_qa_examples`). For a position sweep each places the *same* base example at every
requested gold position, so positions are compared on identical content. The paper's own files are read
by `interp.analysis.recall.loaders`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from interp.analysis.recall.prompts import KV_INSTRUCTION, QA_INSTRUCTION, RecallExample
from interp.errors import InvalidInputError

# --- generators ---------------------------------------------------------------------------------

# Common English words, each one token for SmolLM2 with and without a leading space; none is a
# substring of another or of the KV template, so a value is found in the prompt only where it was put.
WORDS: tuple[str, ...] = tuple("""
    apple river stone cloud horse table window bread forest ocean castle bridge tower market engine
    planet paper glass metal orange soup wheat corn bean pine rose lion owl fox wolf bear mouse ant
    bee snake king doctor teacher student bell bucket plate jar box bag wallet letter stamp coin
    button thread chair bench clock radio camera phone printer screen anchor coat boot sock hat cap
    shirt vest mask gate floor door lake stream hill shore coast bay farm winter summer spring night
    storm snow moon star orbit gravity atom amber clay sand dust ash coal oil gas water milk sugar
    salt dough cookie pie museum library school college office factory hospital station church
    secret legend story song game robot flag map journal folder calendar torch signal echo purple
    yellow green brown black white happy quiet frozen wild bright money price cost party meal room
    house home city town country state world earth field grass leaf flower seed root branch wood
    fire light sound music voice word name book page film movie picture photo image video color
    shape line point circle square number level power energy force speed time year month week day
    hour minute second moment family friend mother father brother child person people group team
    club company business bank shop store heart head hand foot face eye nose mouth skin blood bone
    brain body health food fish egg fruit cup street road path track train car ship boat travel trip
    north south east west center edge top bottom front back inside outside angel hero general major
    agent guard runner player winner leader member master owner manager director justice freedom
    peace ally nation spirit mind dream vision memory thought idea goal purpose reason cause effect
    result problem solution method system process program project design model pattern structure
    network circuit wave particle molecule cell protein medicine surgery therapy treatment
""".split())


def _example_rng(task: str, seed: int, index: int) -> random.Random:
    # One stream per example (str seeds hash with sha512, stable across runs), so example i does not
    # depend on n_examples or on the gold positions asked for.
    return random.Random(f"interp.recall.{task}:{seed}:{index}")


def _expand(
    base: RecallExample, rng: random.Random, gold_positions: Sequence[int] | None
) -> list[RecallExample]:
    """The base example (gold at 0) at each requested position, or at one random position."""
    if gold_positions is None:
        return [base.with_gold_at(rng.randrange(base.n_items))]
    return [base.with_gold_at(p) for p in gold_positions]


def _check_sizes(n_examples: int, n_items: int, gold_positions: Sequence[int] | None) -> None:
    if n_examples < 1 or n_items < 1:
        raise InvalidInputError(f"Need at least one example and one item (got {n_examples} and {n_items}).")
    for p in gold_positions or ():
        if not -n_items <= p < n_items:
            raise InvalidInputError(
                f"Gold position {p} is out of range for {n_items} items (0 to {n_items - 1})."
            )
    if gold_positions is not None and not gold_positions:
        raise InvalidInputError("gold_positions is empty; pass None for one random position per example.")


def _make_kv(
    task: str, pairs: Callable[[random.Random], list[tuple[str, str]]], n_examples: int, seed: int,
    gold_positions: Sequence[int] | None, query_aware: bool, repeat_gold: bool,
) -> list[RecallExample]:
    out: list[RecallExample] = []
    for i in range(n_examples):
        rng = _example_rng(task, seed, i)
        records = pairs(rng)
        base = RecallExample(task, tuple(records), 0, KV_INSTRUCTION, records[0][0], (records[0][1],),
                             query_aware, repeat_gold, f"{task}-s{seed}-{i}")
        out += _expand(base, rng, gold_positions)
    return out


def make_kv_examples(
    n_examples: int, n_items: int, seed: int, gold_positions: Sequence[int] | None = None, *,
    query_aware: bool = False, repeat_gold: bool = False,
) -> list[RecallExample]:
    """Key-value retrieval over `n_items` random UUID pairs, as in the paper.

    Returns `n_examples * len(gold_positions)` examples, example-major (all positions of example 0,
    then example 1, ...), or `n_examples` with the gold pair at a random position when
    `gold_positions` is None.
    """
    _check_sizes(n_examples, n_items, gold_positions)

    def pairs(rng: random.Random) -> list[tuple[str, str]]:
        return [(_uuid(rng), _uuid(rng)) for _ in range(n_items)]

    return _make_kv("kv", pairs, n_examples, seed, gold_positions, query_aware, repeat_gold)


def make_word_kv_examples(
    n_examples: int, n_items: int, seed: int, gold_positions: Sequence[int] | None = None, *,
    query_aware: bool = False, repeat_gold: bool = False,
) -> list[RecallExample]:
    """Key-value retrieval over single common words (`"apple": "river"`), a task a small model can solve.

    All 2 * n_items words of an example are distinct, so n_items is at most len(WORDS) // 2.
    Ordering as in `make_kv_examples`.
    """
    _check_sizes(n_examples, n_items, gold_positions)
    if 2 * n_items > len(WORDS):
        raise InvalidInputError(
            f"Word key-value examples hold at most {len(WORDS) // 2} pairs (asked for {n_items})."
        )

    def pairs(rng: random.Random) -> list[tuple[str, str]]:
        words = rng.sample(WORDS, 2 * n_items)
        return list(zip(words[:n_items], words[n_items:]))

    return _make_kv("kv-words", pairs, n_examples, seed, gold_positions, query_aware, repeat_gold)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))  # 8-4-4-4-12 hex, like uuid4()


# Invented facts for multi-document QA. Every relation has the same two-sentence document shape
# (fact, then a detail that never names an answer), so distractors differ from the gold document only
# in names. Names are coined from syllables so the model cannot know the answer closed-book.
_SYLLABLES = ("bal cor dra fen gal hel jor kal lor mar nev pel quin ros sar tal ven wil zan bri cas "
              "del esk fal gor hal lum mor nor pra riv sel tor vel yar zer").split()
_FIRST_NAMES = ("Ada Bruno Clara Dmitri Elena Felix Greta Hugo Irene Jonas Katya Leon Mira Nadia "
                "Oscar Petra").split()
_FEATURES = ("mountain lakes", "woollen textiles", "spring festivals", "stone bridges", "quiet harbours",
             "painted tiles", "copper mines", "long winters", "river ferries", "glass workshops")
_DETAIL = "{entity} is known for its {feature}."


def _coined(rng: random.Random, suffixes: Sequence[str]) -> str:
    return ("".join(rng.sample(_SYLLABLES, rng.choice((1, 2)))) + rng.choice(suffixes)).capitalize()


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST_NAMES)} {_coined(rng, ('ner', 'son', 'ek', 'ov', 'ard'))}"


def _company(rng: random.Random) -> str:
    return f"{_coined(rng, ('ex', 'ica', 'on'))} {rng.choice(('Industries', 'Systems', 'Labs'))}"


@dataclass(frozen=True)
class _Relation:
    fact: str  # with {entity} and {answer}
    question: str  # with {entity}
    entity: Callable[[random.Random], str]
    answer: Callable[[random.Random], str]


_RELATIONS = (
    _Relation("The capital of the fictional country of {entity} is {answer}.",
              "What is the capital of {entity}?",
              lambda r: _coined(r, ("ia", "ora", "avia")), lambda r: _coined(r, ("beck", "holm", "port"))),
    _Relation("The fictional company {entity} was founded by {answer}.", "Who founded {entity}?",
              _company, _person),
    _Relation("The official language of the fictional island of {entity} is {answer}.",
              "What is the official language of {entity}?",
              lambda r: _coined(r, ("is", "ura", "ene")), lambda r: _coined(r, ("ese", "ish", "ic"))),
    _Relation("The fictional novel {entity} was written by {answer}.", "Who wrote the novel {entity}?",
              lambda r: _coined(r, ("wood", "fall", "vale")), _person),
)
# Text every QA prompt may contain; a coined name must not occur in it.
_FIXED_TEXT = " ".join([QA_INSTRUCTION, _DETAIL, *_FEATURES, *(r.fact + r.question for r in _RELATIONS),
                        "Document Title Question Answer"]).lower()


def _distinct_names(
    rng: random.Random, make: Callable[[random.Random], str], count: int, taken: list[str]
) -> list[str]:
    """`count` new names, none a substring of another name or of the fixed prompt text (any case)."""
    names: list[str] = []
    for _ in range(1000 * count + 1):
        if len(names) == count:
            break
        low = (name := make(rng)).lower()
        if low in _FIXED_TEXT or any(low in t.lower() or t.lower() in low for t in taken + names):
            continue
        names.append(name)
    if len(names) < count:
        raise InvalidInputError(f"Could not coin {count} distinct names; ask for fewer documents.")
    taken += names
    return names


def make_qa_examples(
    n_examples: int, n_items: int, seed: int, gold_positions: Sequence[int] | None = None, *,
    query_aware: bool = False, repeat_gold: bool = False,
) -> list[RecallExample]:
    """Multi-document QA over invented facts: one gold document among `n_items`, the rest distractors.

    Each example picks one relation (capital of a country, founder of a company, language of an
    island, author of a novel); every document states that relation for a different invented entity
    (its title) with a different answer, so the answer appears only in the gold document. Ordering
    as in `make_kv_examples`.
    """
    _check_sizes(n_examples, n_items, gold_positions)
    out: list[RecallExample] = []
    for i in range(n_examples):
        rng = _example_rng("qa", seed, i)
        rel = rng.choice(_RELATIONS)
        taken: list[str] = []
        entities = _distinct_names(rng, rel.entity, n_items, taken)
        answers = _distinct_names(rng, rel.answer, n_items, taken)
        records = []
        for entity, answer in zip(entities, answers):
            detail = _DETAIL.format(entity=entity, feature=rng.choice(_FEATURES))
            records.append((entity, f"{rel.fact.format(entity=entity, answer=answer)} {detail}"))
        base = RecallExample("qa", tuple(records), 0, QA_INSTRUCTION, rel.question.format(entity=entities[0]),
                             (answers[0],), query_aware, repeat_gold, f"qa-s{seed}-{i}")
        out += _expand(base, rng, gold_positions)
    return out
