"""The known_1000 driver: its per-fact rows, averaged, are run_trace's averaged effects on the same facts; it
visits facts in a seeded order, resumes where it stopped, and refuses a parts file of other settings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interp.analysis.facts.params import CATEGORIES, TraceParams
from interp.errors import InvalidInputError


def _setup(tmp_path):
    from interp.analysis.facts.causal_trace import prepare_case
    from interp.analysis.facts.records import FactRecord
    from tests.model.families_twins import load_twin_with_words

    model = load_twin_with_words("llama", tmp_path / "twin")  # a word-level tokenizer: one token per answer
    prompt = "the {} is located in the city of"
    subjects = ["eiffel tower", "louvre museum", "michael jordan", "france", "italy", "berlin"]
    answers = [prepare_case(model, prompt, s).target for s in subjects]
    # facts 1 and 4 ask for an answer the model does not give: not known, so not traced
    wrong = {1: next(w for w in ("paris", "rome") if w != answers[1]),
             4: next(w for w in ("paris", "rome") if w != answers[4])}
    facts = tuple(FactRecord(10 + i, prompt, s, wrong.get(i, a), "x", relation_id="P1")
                  for i, (s, a) in enumerate(zip(subjects, answers)))
    return model, facts


def test_driver_rows_average_to_run_trace_and_resume(tmp_path):
    from interp.analysis.facts.known_trace import build_result, read_parts, run_known_trace, trace_order
    from interp.analysis.facts.run import run_trace

    model, facts = _setup(tmp_path)
    params = TraceParams(samples=2, window=2, seed=3)
    out = tmp_path / "out"
    run_known_trace(model, out, facts, params, known=2, log=lambda *_: None)  # stops after two known facts
    first = read_parts(out / "parts.jsonl")
    order = [facts[i].case_id for i in trace_order(len(facts), 3)]
    assert sorted(order) == [f.case_id for f in facts] and order != [f.case_id for f in facts]
    assert list(first) == order[: len(first)] and sum(r["known"] for r in first.values()) == 2
    run_known_trace(model, out, facts, params, log=lambda *_: None)  # resumes: every fact, each once
    lines = (out / "parts.jsonl").read_text().splitlines()
    done = read_parts(out / "parts.jsonl")
    assert len(lines) == len(facts) and list(done) == order
    assert {k for k, r in done.items() if not r["known"]} == {11, 14}
    assert all(r["commit"] for r in done.values())

    result = build_result(model.cfg.name, model.cfg.n_layers, out, facts, params)
    reference = run_trace(model, TraceParams(prompt=facts[0].prompt, subject="rome", samples=2, window=2, seed=3,
                                             facts=facts))
    assert sorted(reference.skipped) == [11, 14] and len(result.known) == len(reference.facts) == 4
    ours, theirs = result.averaged(), reference.averaged()
    for kind in ("resid", "mlp", "attn"):
        for cat in CATEGORIES:
            a = ours[(ours.kind == kind) & (ours.category == cat)]
            b = theirs[(theirs.kind == kind) & (theirs.category == cat)]
            np.testing.assert_allclose(a.aie.to_numpy(), b.aie.to_numpy(), rtol=0, atol=1e-12)
            assert (a.n_facts.to_numpy() == b.n_facts.to_numpy()).all()
    mlp = result.peak("mlp", "last_subject")
    assert mlp["lo"] <= mlp["aie"] <= mlp["hi"]
    assert np.mean([r["p_clean"] for r in result.known]) == pytest.approx(
        np.mean([f.p_clean for f in reference.facts]), abs=1e-12)

    written = tmp_path / "written"
    written.mkdir()
    (written / "parts.jsonl").write_text((out / "parts.jsonl").read_text())
    from interp.analysis.facts.known_trace import write_result

    write_result(model.cfg.name, model.cfg.n_layers, written, facts, params, command="cmd")
    for name in ("summary.md", "summary.json", "findings.json", "averaged_effects.csv", "comparison.csv",
                 "facts.csv", "figures/aie_by_layer.png", "run.json"):
        assert (written / name).is_file(), name
    assert json.loads((written / "run.json").read_text())["n_known"] == 4
    assert "Complete" in (written / "summary.md").read_text()

    with pytest.raises(InvalidInputError):  # a parts file made at other settings is not extended
        run_known_trace(model, out, facts, TraceParams(samples=3, window=2, seed=3), log=lambda *_: None)


def test_census_counts_the_facts_the_driver_finds_known(tmp_path):
    from interp.analysis.facts.known_trace import census, read_parts, run_known_trace

    model, facts = _setup(tmp_path)
    found = census(model, facts)
    run_known_trace(model, tmp_path / "out", facts, TraceParams(samples=1, window=1), log=lambda *_: None)
    done = read_parts(tmp_path / "out" / "parts.jsonl")
    assert found["known_ids"] == [k for k in (f.case_id for f in facts) if done[k]["known"]] == [10, 12, 13, 15]
    assert (found["n_known"], found["n_set"], found["known_by_relation"]) == (4, 6, {"P1": 4})


def test_shards_share_one_parts_file_and_together_visit_what_one_process_does(tmp_path):
    from interp.analysis.facts.known_trace import read_parts, run_known_trace, trace_order
    from interp.analysis.facts.known_trace_cli import parse_shard

    model, facts = _setup(tmp_path)
    params = TraceParams(samples=2, window=2, seed=3)
    serial, shared = tmp_path / "serial", tmp_path / "shared"
    run_known_trace(model, serial, facts, params, log=lambda *_: None)
    order = [facts[i].case_id for i in trace_order(len(facts), 3)]
    run_known_trace(model, shared, facts, params, shard=(1, 2), log=lambda *_: None)
    assert list(read_parts(shared / "parts.jsonl")) == order[1::2]  # shard 1 of 2: every other fact
    run_known_trace(model, shared, facts, params, shard=(0, 2), log=lambda *_: None)
    one, two = read_parts(serial / "parts.jsonl"), read_parts(shared / "parts.jsonl")
    assert sorted(two) == sorted(one) and len((shared / "parts.jsonl").read_text().splitlines()) == len(facts)
    for key in one:  # the same facts, the same effects
        assert one[key]["known"] == two[key]["known"] and one[key].get("effects") == two[key].get("effects")

    stop = tmp_path / "stop"  # --known counts the facts every shard has kept
    run_known_trace(model, stop, facts, params, shard=(0, 2), log=lambda *_: None)
    kept = sum(r["known"] for r in read_parts(stop / "parts.jsonl").values())
    run_known_trace(model, stop, facts, params, known=kept, shard=(1, 2), log=lambda *_: None)
    assert len(read_parts(stop / "parts.jsonl")) == len(order[0::2])

    assert parse_shard("1/2") == (1, 2)
    for bad in ("2/2", "x", "-1/2"):
        with pytest.raises(SystemExit):
            parse_shard(bad)
