"""Tuning/test splits: re-made from their fact sets they equal the committed files; groups are never cut."""

from __future__ import annotations

import collections
import importlib.util
import json
from pathlib import Path

import pytest

from interp.analysis.facts.known import load_known
from interp.analysis.facts.known_edits import build_known_edits
from interp.analysis.facts.records import FactRecord, load_facts
from interp.analysis.facts.splits import group_labels, load_split, make_split, neighbourhood_groups, select
from interp.errors import InterpError

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "experiments" / "data"


def _make_splits_module():
    spec = importlib.util.spec_from_file_location("make_splits", DATA / "make_splits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["facts", "known_1000"])
def test_committed_split_is_what_the_function_makes(name):
    ms = _make_splits_module()
    records = ms.FACT_SETS[name]()
    made = make_split(records, seed=ms.SEED, tune_fraction=ms.TUNE_FRACTION)
    committed = json.loads(ms.split_path(name).read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(made))
    assert sorted(committed["tune"] + committed["test"]) == sorted(r.case_id for r in records)
    # Every group lies wholly in one part.
    tune = set(committed["tune"])
    for group in committed["groups"]:
        assert len({cid in tune for cid in group}) == 1, group


@pytest.mark.parametrize("name", ["facts", "known_1000"])
def test_split_is_stratified_by_relation(name):
    ms = _make_splits_module()
    records = ms.FACT_SETS[name]()
    split = load_split(ms.split_path(name))
    tune = set(split["tune"])
    labels = neighbourhood_groups(records)
    sizes = collections.Counter(labels)
    by_rel: dict = collections.defaultdict(list)
    for r, g in zip(records, labels):
        by_rel[r.relation_id].append((r.case_id in tune, sizes[g]))
    for rel, rows in by_rel.items():
        n_tune, biggest = sum(t for t, _ in rows), max(s for _, s in rows)
        # Greedy whole-group filling lands within one group of the target share.
        assert abs(n_tune - ms.TUNE_FRACTION * len(rows)) <= biggest, (rel, n_tune, len(rows))


def test_facts_sharing_a_neighbourhood_prompt_share_a_part():
    records = load_facts(DATA / "facts.json")
    split = load_split(DATA / "splits" / "facts.json")
    tune = set(split["tune"])
    owners: dict = collections.defaultdict(set)
    for r in records:
        for p in (r.text, *r.neighborhood_prompts):
            owners[p].add(r.case_id in tune)
    assert all(len(parts) == 1 for parts in owners.values())
    assert len(select(records, split, "tune")) == len(split["tune"]) > 0
    assert len(select(records, split, "test")) == len(split["test"]) > 0


def test_known_split_also_splits_the_edit_set_without_cutting_its_groups():
    known = load_known()
    split = load_split(DATA / "splits" / "known_1000.json")
    edits = build_known_edits(known)
    tune = set(split["tune"])
    parts: dict = collections.defaultdict(set)
    for r, g in zip(edits, neighbourhood_groups(edits)):  # groups formed from the edit set's own prompts
        parts[g].add(r.case_id in tune)
    assert all(len(p) == 1 for p in parts.values())
    assert len(set(group_labels(edits, split))) > 300


def _fact(cid, rel, obj, subject, neighbours=()):
    return FactRecord(cid, "{} is in", subject, obj, "X", rel, neighborhood_prompts=tuple(neighbours))


def test_grouping_rules_and_seed():
    facts = [
        _fact(0, "P1", "A", "s0", ["s9 is in"]),
        _fact(1, "P1", "B", "s1", ["s9 is in"]),  # shares a neighbour prompt with fact 0
        _fact(2, "P1", "A", "s2"),  # same relation and object as fact 0
        _fact(3, "P2", "A", "s3"),  # same object, other relation: its own group
        _fact(4, "P1", "C", "s4", ["s3 is in"]),  # its neighbour prompt is fact 3's rewrite prompt
    ]
    assert neighbourhood_groups(facts) == [0, 0, 0, 1, 1]
    many = [_fact(i, f"P{i % 3}", f"o{i % 7}", f"s{i}") for i in range(60)]
    a, b = make_split(many, seed=0), make_split(many, seed=1)
    assert a == make_split(many, seed=0) and a["tune"] != b["tune"]
    with pytest.raises(InterpError, match="strictly between"):
        make_split(many, tune_fraction=1.0)
    with pytest.raises(InterpError, match="case_ids repeat"):
        make_split(many + many[:1])


def test_bad_split_files_are_refused(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"tune": [1, 2], "test": [2]}), encoding="utf-8")
    with pytest.raises(InterpError, match="both 'tune' and 'test'"):
        load_split(path)
    with pytest.raises(InterpError, match="does not exist"):
        load_split(tmp_path / "none.json")
    with pytest.raises(InterpError, match="do not cover case_id 5"):
        group_labels([_fact(5, "P1", "A", "s")], {"tune": [], "test": [5], "groups": [[1]]})
