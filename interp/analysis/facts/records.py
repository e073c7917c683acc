"""Fact records: one (subject, relation, object) fact with the prompts that probe and edit it.

The on-disk layout is CounterFact's (Meng et al. 2022, "Locating and Editing Factual Associations in
GPT", https://rome.baulab.info), so its released files load unchanged. A CounterFact file is a JSON
array of records (we also read JSONL, one record per line, and either form gzipped):

    {
      "case_id": 0,
      "requested_rewrite": {
        "prompt": "The {} is located in the city of",     # exactly one "{}": where the subject goes
        "relation_id": "P131",                             # Wikidata property; may be missing
        "subject": "Eiffel Tower",
        "target_true": {"str": "Paris", "id": "Q90"},      # no leading space: kept as stored
        "target_new": {"str": "Rome", "id": "Q220"}        # the counterfactual a ROME edit asks for
      },
      "paraphrase_prompts": ["... The Eiffel Tower stands in the city of"],  # same fact, other words
      "neighborhood_prompts": ["The Louvre is located in the city of"],    # other subjects, same answer
      "attribute_prompts": ["The Colosseum is located in the city of"],    # other subjects, answer = new
      "generation_prompts": ["The Eiffel Tower is famous for"]             # open text, for fluency
    }

The four prompt lists are optional. Any other field (top level or inside ``requested_rewrite``) is kept
in :attr:`FactRecord.extra` and written back by :meth:`FactRecord.to_counterfact`, so a load/save round
trip loses nothing. Every format problem raises :class:`~interp.errors.DataFormatError` naming the file,
the line (JSONL) or record number (JSON array) and the field.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp.errors import DataFormatError, InterpError

LIST_FIELDS = ("paraphrase_prompts", "neighborhood_prompts", "attribute_prompts", "generation_prompts")
_REWRITE_KEYS = {"prompt", "relation_id", "subject", "target_true", "target_new"}
_TOP_KEYS = {"case_id", "requested_rewrite", *LIST_FIELDS}


@dataclass(frozen=True)
class FactRecord:
    """One fact: ``prompt.format(subject)`` should be continued by ``target_true``."""

    case_id: int | str
    prompt: str  # holds exactly one "{}"
    subject: str
    target_true: str  # as stored: CounterFact targets have no leading space
    target_new: str
    relation_id: str | None = None
    paraphrase_prompts: tuple[str, ...] = ()
    neighborhood_prompts: tuple[str, ...] = ()
    attribute_prompts: tuple[str, ...] = ()
    generation_prompts: tuple[str, ...] = ()
    # Unknown fields: top-level keys as they are, ``requested_rewrite`` keys under "requested_rewrite",
    # target ids under "target_true_id" / "target_new_id".
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.prompt.count("{}") != 1:
            raise ValueError(f"prompt {self.prompt!r} must contain exactly one '{{}}'")
        if not self.subject.strip():
            raise ValueError("subject must not be empty")

    @property
    def text(self) -> str:
        """The rewrite prompt with the subject filled in."""
        return self.prompt.replace("{}", self.subject)

    def to_counterfact(self) -> dict[str, Any]:
        """The record in CounterFact's nested layout (the inverse of the loader)."""
        extra = dict(self.extra)
        rewrite: dict[str, Any] = {
            "prompt": self.prompt,
            "relation_id": self.relation_id,
            "subject": self.subject,
            "target_new": {"str": self.target_new, "id": extra.pop("target_new_id", None)},
            "target_true": {"str": self.target_true, "id": extra.pop("target_true_id", None)},
        }
        rewrite.update(extra.pop("requested_rewrite", {}))
        out: dict[str, Any] = {"case_id": self.case_id, "requested_rewrite": rewrite}
        for name in LIST_FIELDS:
            out[name] = list(getattr(self, name))
        out.update(extra)
        return out


def _parse_record(obj: Any, path: Path, line: int, where: str) -> FactRecord:
    """Build one record from its decoded JSON; ``where`` says what ``line`` counts (for messages)."""

    def fail(name: str | None, problem: str) -> DataFormatError:
        return DataFormatError(path, line, name, f"{problem} ({where}).")

    if not isinstance(obj, dict):
        raise fail(None, f"a record must be a JSON object, not {type(obj).__name__}")
    rw = obj.get("requested_rewrite")
    if not isinstance(rw, dict):
        raise fail("requested_rewrite", "missing or not an object")

    def text(name: str) -> str:
        value = rw.get(name)
        if not isinstance(value, str):
            raise fail(f"requested_rewrite.{name}", "missing or not a string")
        return value

    def target(name: str) -> tuple[str, Any]:
        value = rw.get(name)
        if not isinstance(value, dict):
            raise fail(f"requested_rewrite.{name}", "missing or not an object with a 'str' field")
        if not isinstance(value.get("str"), str) or not value["str"].strip():
            raise fail(f"requested_rewrite.{name}.str", "missing, empty or not a string")
        return value["str"], value.get("id")

    prompt, subject = text("prompt"), text("subject")
    if prompt.count("{}") != 1:
        raise fail("requested_rewrite.prompt", f"{prompt!r} must contain exactly one '{{}}'")
    if not subject.strip():
        raise fail("requested_rewrite.subject", "the subject is empty")
    true_str, true_id = target("target_true")
    new_str, new_id = target("target_new")
    relation_id = rw.get("relation_id")
    if relation_id is not None and not isinstance(relation_id, str):
        raise fail("requested_rewrite.relation_id", "must be a string")
    case_id = obj.get("case_id", line)  # CounterFact always has one; fall back to the line
    if not isinstance(case_id, (int, str)) or isinstance(case_id, bool):
        raise fail("case_id", "must be an integer or a string")

    lists: dict[str, tuple[str, ...]] = {}
    for name in LIST_FIELDS:
        value = obj.get(name, [])
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise fail(name, "must be a list of strings")
        lists[name] = tuple(value)

    extra: dict[str, Any] = {k: v for k, v in obj.items() if k not in _TOP_KEYS}
    rw_extra = {k: v for k, v in rw.items() if k not in _REWRITE_KEYS}
    if rw_extra:
        extra["requested_rewrite"] = rw_extra
    if true_id is not None:
        extra["target_true_id"] = true_id
    if new_id is not None:
        extra["target_new_id"] = new_id
    return FactRecord(case_id, prompt, subject, true_str, new_str, relation_id, extra=extra, **lists)


def _read_text(path: Path) -> str:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return f.read()
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InterpError(f"Fact file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        what = "cannot be read as gzipped UTF-8 text" if path.suffix == ".gz" else "cannot be read as UTF-8 text"
        raise DataFormatError(path, None, None, f"{what} ({e}).") from None


def _record_lines(content: str) -> list[int]:
    """The line on which each record of a (valid) JSON array starts, for error messages."""
    decoder, lines, pos = json.JSONDecoder(), [], content.index("[") + 1
    while True:
        while content[pos] in " \t\r\n,":
            pos += 1
        if content[pos] == "]":
            return lines
        lines.append(content.count("\n", 0, pos) + 1)
        pos = decoder.raw_decode(content, pos)[1]


def load_facts(path: str | Path) -> list[FactRecord]:
    """Read a CounterFact file: a JSON array or JSONL, optionally gzipped (``.gz``).

    Errors name the line where the bad record starts; for a JSON array the message also gives the
    record's number in the array.
    """
    path = Path(path)
    return parse_facts(_read_text(path), path)


def parse_facts(content: str, source: object) -> list[FactRecord]:
    """`load_facts` on text already read (an upload); errors name `source` where they name the file."""
    if not content.strip():
        raise DataFormatError(source, None, None, "the file is empty.")
    if content.lstrip().startswith("["):
        try:
            data = json.loads(content)
        except json.JSONDecodeError as e:
            raise DataFormatError(source, e.lineno, None, f"not valid JSON ({e.msg}).") from None
        except RecursionError:
            raise DataFormatError(source, None, None, "the JSON is nested too deeply to be a fact file.") from None
        return [
            _parse_record(obj, source, line, f"record {number} of the array")
            for number, (line, obj) in enumerate(zip(_record_lines(content), data), 1)
        ]
    records = []
    for lineno, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFormatError(source, lineno, None, f"not valid JSON ({e.msg}).") from None
        except RecursionError:
            raise DataFormatError(source, lineno, None, "the JSON is nested too deeply to be a fact record.") from None
        records.append(_parse_record(obj, source, lineno, "JSONL line"))
    return records


def save_facts(records: Iterable[FactRecord], path: str | Path, *, overwrite: bool = False) -> Path:
    """Write records as a CounterFact JSON array (gzipped if the name ends in ``.gz``)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InterpError(f"{path} already exists; pass overwrite=True to replace it.")
    text = json.dumps([r.to_counterfact() for r in records], indent=1, ensure_ascii=False) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def draw(records, n: int | None, seed: int) -> list:
    """n of the records drawn at random (seeded, without replacement), kept in their order; all of them when
    n is None or not below their count. The fact files are grouped by relation, so a draw mixes relations
    where the first n would not."""
    records = list(records)
    if n is None or n >= len(records):
        return records
    import numpy as np

    keep = np.random.default_rng(seed).choice(len(records), n, replace=False)
    return [records[i] for i in sorted(keep)]
