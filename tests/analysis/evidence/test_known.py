"""ROME's known_1000.json, vendored: the loader keeps every fact and refuses malformed records by line and field."""

from __future__ import annotations

import collections
import json

import pytest

from interp.analysis.facts.known import KNOWN_1000, load_known
from interp.errors import DataFormatError


def test_vendored_file_loads_as_the_paper_describes():
    facts = load_known()
    raw = json.loads(KNOWN_1000.read_text(encoding="utf-8"))
    assert len(facts) == 1209  # the paper's count
    assert len({f.relation_id for f in facts}) == 33
    for f, r in zip(facts, raw):
        assert f.case_id == r["known_id"]
        assert f.text == r["prompt"]  # the traced prompt comes back whole
        assert f.prompt.count("{}") == 1
        assert f.target_true == r["attribute"] and f.target_new == ""
        assert f.extra["template"] == r["template"] and f.extra["prediction"] == r["prediction"]
    assert facts[0].subject == "Vinson Massif" and facts[0].prompt == "{} is located in the continent of"
    assert collections.Counter(f.relation_id for f in facts)["P449"] == 50


def _write(tmp_path, records):
    path = tmp_path / "known.json"
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path


GOOD = {"known_id": 0, "subject": "Paris", "attribute": "France", "template": "{} is in",
        "prediction": " France.", "prompt": "Paris is in", "relation_id": "P17"}


@pytest.mark.parametrize("change, field, problem", [
    ({"attribute": ""}, "attribute", "missing, empty or not a string"),
    ({"prompt": "Lyon is in"}, "prompt", "does not contain the subject"),
    ({"template": "is in"}, "template", "exactly one"),
    ({"known_id": "7"}, "known_id", "not an integer"),
    ({"relation_id": None}, "relation_id", "missing"),
])
def test_malformed_record_names_line_record_and_field(tmp_path, change, field, problem):
    path = _write(tmp_path, [GOOD, {**GOOD, "known_id": 1, **change}])
    with pytest.raises(DataFormatError) as info:
        load_known(path)
    message = str(info.value)
    assert info.value.field == field and problem in message
    assert "record 2 of the array" in message
    assert info.value.line == 11  # indent=1: record 1 spans lines 2-10, record 2 opens on line 11
    assert message.count("\n") == 0


def test_duplicate_ids_and_non_arrays_are_refused(tmp_path):
    with pytest.raises(DataFormatError, match="known_id 0 is used by records 1 and 2"):
        load_known(_write(tmp_path, [GOOD, GOOD]))
    with pytest.raises(DataFormatError, match="JSON array"):
        load_known(_write(tmp_path, {"facts": []}))
    (tmp_path / "bad.json").write_text("[{", encoding="utf-8")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        load_known(tmp_path / "bad.json")
