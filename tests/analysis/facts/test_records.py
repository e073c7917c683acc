"""FactRecord, load_facts and save_facts: CounterFact layouts in, the same layout out, clear errors."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from interp.analysis.facts.records import FactRecord, load_facts, save_facts
from interp.errors import DataFormatError, InterpError

SHIPPED = Path(__file__).resolve().parents[3] / "experiments" / "data" / "facts.json"

RECORD: dict[str, Any] = {
    "case_id": 7,
    "requested_rewrite": {
        "prompt": "The {} is located in the city of",
        "relation_id": "P131",
        "subject": "Eiffel Tower",
        "target_new": {"str": "Rome", "id": "Q220"},
        "target_true": {"str": "Paris", "id": "Q90"},
    },
    "paraphrase_prompts": ["It rained. The Eiffel Tower stands in the city of"],
    "neighborhood_prompts": ["The Louvre is located in the city of"],
    "attribute_prompts": ["The Colosseum is located in the city of"],
    "generation_prompts": ["The Eiffel Tower is famous for"],
}


def _record(**changes: Any) -> dict[str, Any]:
    """RECORD with top-level changes; a key "rw.<name>" changes requested_rewrite; None deletes."""
    rec = copy.deepcopy(RECORD)
    for key, value in changes.items():
        target, name = (rec["requested_rewrite"], key[3:]) if key.startswith("rw.") else (rec, key)
        if value is None:
            del target[name]
        else:
            target[name] = value
    return rec


def _write_array(path: Path, records: list[Any]) -> Path:
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path


def test_fields_text_and_counterfact_round_trip(tmp_path: Path) -> None:
    (fact,) = load_facts(_write_array(tmp_path / "f.json", [RECORD]))
    assert fact.case_id == 7 and fact.subject == "Eiffel Tower" and fact.relation_id == "P131"
    assert fact.target_true == "Paris" and fact.target_new == "Rome"  # stored without a leading space
    assert fact.text == "The Eiffel Tower is located in the city of"
    assert fact.neighborhood_prompts == ("The Louvre is located in the city of",)
    assert fact.to_counterfact() == RECORD


def test_unknown_fields_survive_save_and_load(tmp_path: Path) -> None:
    rec = _record(known_by=["smollm2-135m"], **{"rw.note": "hand-written"})
    facts = load_facts(_write_array(tmp_path / "in.json", [rec, _record(case_id="x")]))
    assert facts[0].extra["known_by"] == ["smollm2-135m"]
    out = save_facts(facts, tmp_path / "out.json")
    assert json.loads(out.read_text())[0] == rec
    assert load_facts(out) == facts


def test_optional_lists_default_to_empty(tmp_path: Path) -> None:
    rec = _record(paraphrase_prompts=None, neighborhood_prompts=None, attribute_prompts=None,
                  generation_prompts=None, **{"rw.relation_id": None})
    (fact,) = load_facts(_write_array(tmp_path / "f.json", [rec]))
    assert fact.paraphrase_prompts == () and fact.relation_id is None


@pytest.mark.parametrize("name", ["f.jsonl", "f.jsonl.gz", "f.json.gz"])
def test_jsonl_and_gzip_forms(tmp_path: Path, name: str) -> None:
    records = [RECORD, _record(case_id=8)]
    if ".jsonl" in name:
        text = "\n".join(json.dumps(r) for r in records) + "\n\n"
    else:
        text = json.dumps(records)
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    assert [f.case_id for f in load_facts(path)] == [7, 8]


def test_save_gzip_and_empty_array(tmp_path: Path) -> None:
    fact = FactRecord(1, "{} plays the sport of", "Michael Jordan", "basketball", "tennis")
    assert load_facts(save_facts([fact], tmp_path / "f.json.gz")) == [fact]
    assert load_facts(_write_array(tmp_path / "empty.json", [])) == []


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    path = save_facts([], tmp_path / "f.json")
    with pytest.raises(InterpError, match="already exists"):
        save_facts([], path)
    save_facts([], path, overwrite=True)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"requested_rewrite": None}, "'requested_rewrite'"),
        ({"requested_rewrite": "oops"}, "'requested_rewrite'"),
        ({"rw.prompt": None}, "'requested_rewrite.prompt'"),
        ({"rw.prompt": "no placeholder"}, "'requested_rewrite.prompt'"),
        ({"rw.prompt": "{} and {}"}, "'requested_rewrite.prompt'"),
        ({"rw.subject": None}, "'requested_rewrite.subject'"),
        ({"rw.subject": "  "}, "'requested_rewrite.subject'"),
        ({"rw.target_true": None}, "'requested_rewrite.target_true'"),
        ({"rw.target_new": None}, "'requested_rewrite.target_new'"),
        ({"rw.target_new": {"id": "Q1"}}, "'requested_rewrite.target_new.str'"),
        ({"rw.target_true": {"str": 3}}, "'requested_rewrite.target_true.str'"),
        ({"paraphrase_prompts": "one string"}, "'paraphrase_prompts'"),
        ({"neighborhood_prompts": ["ok", 3]}, "'neighborhood_prompts'"),
        ({"generation_prompts": {"a": 1}}, "'generation_prompts'"),
        ({"attribute_prompts": [None]}, "'attribute_prompts'"),
    ],
)
def test_format_errors_name_the_field(tmp_path: Path, changes: dict[str, Any], field: str) -> None:
    # JSONL: the line is the file line; the bad record is on line 2.
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps(RECORD) + "\n" + json.dumps(_record(**changes)) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"f.jsonl, line 2, field {field}") as info:
        load_facts(path)
    assert info.value.line == 2 and str(info.value).count(".") >= 1
    # JSON array: the message gives the line where the record starts and its number in the array.
    path = _write_array(tmp_path / "f.json", [RECORD, _record(**changes)])
    with pytest.raises(DataFormatError, match=f"field {field}.*record 2 of the array"):
        load_facts(path)


def test_record_that_is_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="line 2: a record must be a JSON object, not list"):
        load_facts(_write_array(tmp_path / "f.json", [[1, 2], RECORD]))
    path = tmp_path / "f.jsonl"
    path.write_text('"just a string"\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match="line 1: a record must be a JSON object"):
        load_facts(path)


@pytest.mark.parametrize(
    ("text", "line"),
    [("[{\"case_id\": 1},\n{oops}]", 2), (json.dumps(RECORD) + "\nnot json\n", 2), ("[1, 2", 1), ("[]\n]", 2)],
)
def test_not_json(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / ("f.json" if text.startswith("[") else "f.jsonl")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"line {line}: not valid JSON") as info:
        load_facts(path)
    assert info.value.line == line


def test_empty_binary_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("  \n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="empty"):
        load_facts(tmp_path / "empty.json")
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataFormatError, match="cannot be read"):
        load_facts(tmp_path / "bad.json.gz")
    with pytest.raises(InterpError, match="does not exist"):
        load_facts(tmp_path / "missing.json")


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        FactRecord(0, "no placeholder", "X", "a", "b")
    with pytest.raises(ValueError, match="subject"):
        FactRecord(0, "{} is", " ", "a", "b")


def test_shipped_fact_set() -> None:
    facts = load_facts(SHIPPED)
    assert len(facts) >= 60
    assert len({f.relation_id for f in facts}) >= 8
    assert len({f.case_id for f in facts}) == len(facts)
    for fact in facts:
        assert len(fact.paraphrase_prompts) >= 2 and len(fact.neighborhood_prompts) >= 5, fact.case_id
        assert len(fact.generation_prompts) >= 2 and fact.target_new != fact.target_true
        assert fact.extra["known_by"], fact.case_id
    first = next(f for f in facts if f.case_id == 0)
    assert (first.subject, first.prompt, first.target_true, first.target_new) == (
        "Eiffel Tower", "The {} is located in the city of", "Paris", "Rome")
    assert "smollm2-135m" in first.extra["known_by"]
    jordan = [f for f in facts if f.subject == "Michael Jordan"]
    assert len(jordan) == 1 and jordan[0].target_true == "basketball"
    assert jordan[0].text == "Michael Jordan plays the sport of"
