"""The paper's released lost-in-the-middle files, read unchanged (Liu et al. 2024). Seeded synthetic
examples come from `interp.analysis.recall.synthetic`.

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
import zlib
from collections.abc import Iterator
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
            except RecursionError:
                raise DataFormatError(path, line_no, None, "the line's JSON is nested too deeply") from None
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
