"""Where lost-in-the-middle examples come from: seeded generators, or the paper's files (Liu et al. 2024).

Three generators make synthetic `RecallExample`s, deterministic under a seed: UUID key/value pairs as
in the paper (`make_kv_examples`), single common words that a 135M model can copy
(`make_word_kv_examples`), and multi-document QA over invented facts whose answer occurs only in the
gold document (`make_qa_examples`). For a position sweep each places the *same* base example at every
requested gold position, so positions are compared on identical content.

Liu et al. released their inputs as gzipped JSON lines (github.com/nelson-liu/lost-in-the-middle):
`qa_data/nq-open-{10,20,30}_total_documents_gold_at_{i}.jsonl.gz` (and `nq-open-oracle.jsonl.gz`) hold
one NaturalQuestions-Open question per line with its k retrieved passages, the gold passage already
at position i; `kv_retrieval_data/kv-retrieval-{75,140,300}_keys.jsonl.gz` hold one JSON object of
UUID pairs per line, the pair to retrieve at a random position that each experiment moves to the
requested index. `load_qa_file` and `load_kv_file` read the files unchanged (gold at the position it
has in the file; `with_gold_at` moves it, keeping the distractors' order as the paper's scripts do),
and refuse anything malformed with a `DataFormatError` naming the file, the 1-based line and the field.

Record formats (extra fields such as `nq_annotated_gold` are ignored):

    QA: {"question": str, "answers": [str, ...],
         "ctxs": [{"title": str, "text": str, "isgold": bool, "hasanswer": bool,
                   distractors only: "id", "score", "original_retrieval_index"}, ...]}
    KV: {"ordered_kv_records": [[key, value], ...], "key": str, "value": str}

Paper: N. F. Liu et al., "Lost in the Middle: How Language Models Use Long Contexts", TACL 12 (2024).
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.analysis.recall.prompts import KV_INSTRUCTION, QA_INSTRUCTION, RecallExample
from interp.errors import DataFormatError, InvalidInputError

# --- the paper's files ------------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (1-based line number, record) for each non-blank line of a .jsonl or .jsonl.gz file.

    Compression is recognised by the gzip magic bytes, not by the file name.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file.")
    with path.open("rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC
    if path.suffix == ".gz" and not gzipped:
        raise DataFormatError(path, None, None, "the file is named .gz but is not gzip-compressed")
    opener = gzip.open if gzipped else open
    line_no = 0
    with opener(path, "rb") as f:  # type: ignore[operator]
        lines = iter(f)
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                break
            except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
                problem = f"the gzip stream is corrupt or truncated ({e})"
                raise DataFormatError(path, line_no + 1, None, problem) from None
            line_no += 1
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise DataFormatError(path, line_no, None, "the line is not UTF-8 text") from None
            except json.JSONDecodeError as e:
                raise DataFormatError(path, line_no, None, f"the line is not valid JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise DataFormatError(path, line_no, None, "the line is not a JSON object")
            yield line_no, record
    if line_no == 0:
        raise DataFormatError(path, None, None, "the file holds no records")


def _field(record: dict[str, Any], name: str, kind: type, path: Path, line: int, where: str = "") -> Any:
    """record[name], checked to exist and to have type `kind`; `where` prefixes the field's name in errors."""
    label = f"{where}{name}"
    if name not in record:
        raise DataFormatError(path, line, label, "the field is missing")
    value = record[name]
    # bool is a subclass of int: a JSON true must not pass as a number, nor a number as a bool.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise DataFormatError(path, line, label, f"expected {_KIND_NAMES[kind]}, found {_json_kind(value)}")
    return value


_KIND_NAMES = {str: "a string", list: "a list", dict: "an object", bool: "true or false"}


def _json_kind(value: Any) -> str:
    for kind, name in ((bool, "true or false"), (str, "a string"), (list, "a list"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else "a number"


def _string_list(record: dict[str, Any], name: str, path: Path, line: int) -> list[str]:
    values = _field(record, name, list, path, line)
    if not values:
        raise DataFormatError(path, line, name, "the list is empty")
    for i, v in enumerate(values):
        if not isinstance(v, str) or not v:
            problem = f"expected a non-empty string, found {_json_kind(v)}"
            raise DataFormatError(path, line, f"{name}[{i}]", problem)
    return values


def _nonempty_str(record: dict[str, Any], name: str, path: Path, line: int) -> str:
    value = _field(record, name, str, path, line)
    if not value.strip():
        raise DataFormatError(path, line, name, "the string is empty")
    return value


def load_qa_file(path: str | Path, *, query_aware: bool = False, repeat_gold: bool = False,
                 limit: int | None = None) -> list[RecallExample]:
    """Read a multi-document QA file (`qa_data/*.jsonl.gz` or plain .jsonl) into QA examples.

    The gold document is the first with `isgold` true, else the first with `hasanswer` true; it
    stays where the file put it. `example_id` is "<file name>:<line>". `limit` stops after that many
    records.
    """
    path = Path(path)
    out: list[RecallExample] = []
    for line, record in read_jsonl(path):
        question = _nonempty_str(record, "question", path, line)
        answers = _string_list(record, "answers", path, line)
        ctxs = _field(record, "ctxs", list, path, line)
        if not ctxs:
            raise DataFormatError(path, line, "ctxs", "the list of documents is empty")
        docs: list[tuple[str, str]] = []
        isgold: list[bool] = []
        hasanswer: list[bool] = []
        for i, ctx in enumerate(ctxs):
            where = f"ctxs[{i}]"
            if not isinstance(ctx, dict):
                raise DataFormatError(path, line, where, f"expected an object, found {_json_kind(ctx)}")
            title = _field(ctx, "title", str, path, line, where + ".")
            docs.append((title, _field(ctx, "text", str, path, line, where + ".")))
            for flag, flags in (("isgold", isgold), ("hasanswer", hasanswer)):
                flags.append(_field(ctx, flag, bool, path, line, where + ".") if flag in ctx else False)
        gold = isgold.index(True) if True in isgold else hasanswer.index(True) if True in hasanswer else None
        if gold is None:
            raise DataFormatError(path, line, "ctxs", "no document is marked isgold or hasanswer")
        out.append(RecallExample("qa", tuple(docs), gold, QA_INSTRUCTION, question, tuple(answers),
                                 query_aware, repeat_gold, f"{path.name}:{line}"))
        if limit is not None and len(out) >= limit:
            break
    return out


def load_kv_file(path: str | Path, *, query_aware: bool = False, repeat_gold: bool = False,
                 limit: int | None = None) -> list[RecallExample]:
    """Read a key-value retrieval file (`kv_retrieval_data/*.jsonl.gz` or plain .jsonl) into KV examples.

    The gold pair is `[key, value]`, found among `ordered_kv_records` and left at its index there.
    Keys must be unique (the paper's prompt builder refuses duplicates too). `example_id` is
    "<file name>:<line>"; `limit` stops after that many records.
    """
    path = Path(path)
    out: list[RecallExample] = []
    for line, record in read_jsonl(path):
        pairs = _field(record, "ordered_kv_records", list, path, line)
        if not pairs:
            raise DataFormatError(path, line, "ordered_kv_records", "the list of pairs is empty")
        records: list[tuple[str, str]] = []
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2 and all(x and isinstance(x, str) for x in pair)):
                problem = "expected a [key, value] pair of two non-empty strings"
                raise DataFormatError(path, line, f"ordered_kv_records[{i}]", problem)
            records.append((pair[0], pair[1]))
        keys = [k for k, _ in records]
        if len(set(keys)) != len(keys):
            raise DataFormatError(path, line, "ordered_kv_records", "the object has duplicate keys")
        key = _nonempty_str(record, "key", path, line)
        value = _nonempty_str(record, "value", path, line)
        if key not in keys:
            raise DataFormatError(path, line, "key", f"the key {key!r} is not among ordered_kv_records")
        gold = keys.index(key)
        if records[gold][1] != value:
            problem = f"the value {value!r} is not the one paired with the key in ordered_kv_records"
            raise DataFormatError(path, line, "value", problem)
        out.append(RecallExample("kv", tuple(records), gold, KV_INSTRUCTION, key, (value,),
                                 query_aware, repeat_gold, f"{path.name}:{line}"))
        if limit is not None and len(out) >= limit:
            break
    return out


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
