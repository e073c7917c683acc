"""ROME's ``known_1000.json``: the 1,209 facts of the causal-tracing paper, read as fact records.

Meng et al. (2022, "Locating and Editing Factual Associations in GPT", Sec. 2 and App. B) traced the
facts GPT-2 XL completes correctly; their released file (vendored in ``experiments/data/rome/``, see
``experiments/data/SOURCES.md``) is a JSON array of

    {"known_id": 0, "subject": "Vinson Massif", "attribute": "Antarctica",
     "template": "{} is located in the continent", "relation_id": "P30",
     "prediction": " of Antarctica. It is the largest of the three",      # GPT-2 XL's greedy text
     "prompt": "Vinson Massif is located in the continent of"}            # template + the words GPT-2 XL
                                                                          # wrote before the attribute

:func:`load_known` turns each into a :class:`~interp.analysis.facts.records.FactRecord`: ``case_id`` is
``known_id``, ``prompt`` is the traced prompt with the subject's first occurrence replaced by ``{}`` (the
prompt the paper traced), ``target_true`` is ``attribute``. A known fact asks for no edit, so
``target_new`` is empty; ``experiments/data/build_known_edits.py`` draws one. ``template`` and
``prediction`` stay in ``extra``. Every format problem raises :class:`~interp.errors.DataFormatError`
naming the file, the line where the record starts, its number in the array and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from interp.analysis.facts.records import FactRecord, _read_text, _record_lines
from interp.errors import DataFormatError

KNOWN_1000 = Path(__file__).resolve().parents[3] / "experiments" / "data" / "rome" / "known_1000.json"
_FIELDS = ("subject", "attribute", "template", "prompt", "relation_id")


def _parse_known(obj: Any, path: Path, line: int, number: int) -> FactRecord:
    def fail(name: str | None, problem: str) -> DataFormatError:
        return DataFormatError(path, line, name, f"{problem} (record {number} of the array).")

    if not isinstance(obj, dict):
        raise fail(None, f"a record must be a JSON object, not {type(obj).__name__}")
    values: dict[str, str] = {}
    for name in _FIELDS:
        value = obj.get(name)
        if not isinstance(value, str) or not value.strip():
            raise fail(name, "missing, empty or not a string")
        values[name] = value
    known_id = obj.get("known_id")
    if not isinstance(known_id, int) or isinstance(known_id, bool):
        raise fail("known_id", "missing or not an integer")
    subject, prompt = values["subject"], values["prompt"]
    if subject not in prompt:
        raise fail("prompt", f"{prompt!r} does not contain the subject {subject!r}")
    if "{}" in prompt:
        raise fail("prompt", f"{prompt!r} already contains '{{}}', so the subject's place is ambiguous")
    if values["template"].count("{}") != 1:
        raise fail("template", f"{values['template']!r} must contain exactly one '{{}}'")
    extra = {k: v for k, v in obj.items() if k not in (*_FIELDS, "known_id")}
    extra["template"] = values["template"]
    return FactRecord(
        case_id=known_id,
        prompt=prompt.replace(subject, "{}", 1),
        subject=subject,
        target_true=values["attribute"],
        target_new="",  # known_1000 asks for no edit
        relation_id=values["relation_id"],
        extra=extra,
    )


def load_known(path: str | Path = KNOWN_1000) -> list[FactRecord]:
    """The facts of a ``known_1000.json``-format file (default: the vendored copy), in file order."""
    path = Path(path)
    content = _read_text(path)
    if not content.strip():
        raise DataFormatError(path, None, None, "the file is empty.")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, None, f"not valid JSON ({e.msg}).") from None
    if not isinstance(data, list):
        raise DataFormatError(path, None, None, "the file must hold a JSON array of facts.")
    records = [_parse_known(obj, path, line, number)
               for number, (line, obj) in enumerate(zip(_record_lines(content), data), 1)]
    seen: dict[int | str, int] = {}
    for number, r in enumerate(records, 1):
        if r.case_id in seen:
            raise DataFormatError(path, None, "known_id", f"known_id {r.case_id} is used by records "
                                  f"{seen[r.case_id]} and {number}.")
        seen[r.case_id] = number
    return records
