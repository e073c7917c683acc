"""The resumable 75-key KV driver (interp.analysis.recall.kv75) without a model: the file's first n examples in
order at the paper's positions, one parts.jsonl line per example with its commit, resume skips what is done,
a deadline stops before the next example, and the result is the analysis' own reduction of what is complete."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from interp.analysis.recall import kv75
from interp.analysis.recall.evaluate import Score


def fake_score(example, correct: bool) -> Score:
    att = np.full((2, 3), 0.1)
    pred = f' "{example.answers[0]}"\n' if correct else ' "nope"\n'
    return Score(logprob=-1.0 - example.gold_position / 10, first_logprob=-0.5, rank=1, choice_correct=float(correct),
                 prediction=pred, correct=float(correct), gold_attention=att, distractor_attention=att / 2)


@pytest.fixture
def scored(monkeypatch):
    calls = []

    def score(model, examples, **kw):
        calls.append([(e.example_id, e.gold_position) for e in examples])
        assert kw["max_new_tokens"] == kv75.KV_NEW_TOKENS and kw["reuse_prefix"] and kw["batch_size"] == 1
        return [fake_score(e, e.gold_position == 0) for e in examples]  # right only at the first position

    monkeypatch.setattr(kv75, "score_examples", score)
    return calls


MODEL = SimpleNamespace(cfg=SimpleNamespace(name="tiny"))


def test_runs_the_first_examples_in_order_and_resumes(tmp_path, scored):
    result = kv75.run_kv75(MODEL, 2, tmp_path, log=lambda *_: None)
    assert [c[0][0] for c in scored] == ["kv-retrieval-75_keys.jsonl.gz:1", "kv-retrieval-75_keys.jsonl.gz:2"]
    assert all([p for _, p in c] == [0, 24, 49, 74] for c in scored)
    lines = [json.loads(x) for x in (tmp_path / "parts.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(x["commit"] and len(x["scores"]) == 4 for x in lines)
    curves = result.curves.set_index("gold_position")
    assert list(curves["n"]) == [2, 2, 2, 2] and curves.loc[0, "accuracy"] == 1 and curves.loc[74, "accuracy"] == 0
    rule = (tmp_path / "paper_rule.csv").read_text().splitlines()
    assert rule[0].startswith("gold_position,n,correct") and rule[1].startswith("0,2,1.0")
    # a rerun asking for 3 scores only the third example
    scored.clear()
    kv75.run_kv75(MODEL, 3, tmp_path, log=lambda *_: None)
    assert [c[0][0] for c in scored] == ["kv-retrieval-75_keys.jsonl.gz:3"]
    assert json.loads((tmp_path / "run.json").read_text())["n_examples"] == 3


def test_a_past_deadline_starts_nothing_and_reports_what_is_complete(tmp_path, scored):
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert kv75.run_kv75(MODEL, 2, tmp_path, until=past, log=lambda *_: None) is None
    assert scored == []
    kv75.run_kv75(MODEL, 1, tmp_path, log=lambda *_: None)
    result = kv75.run_kv75(MODEL, 5, tmp_path, until=past, log=lambda *_: None)
    assert result.params.n_examples == 1 and set(result.curves["n"]) == {1}


def test_scores_round_trip_through_json():
    ex = kv75.base_examples(kv75.spec_params(1))[0]
    s = fake_score(ex, True)
    back = kv75.score_from_json(json.loads(json.dumps(kv75.score_to_json(s))))
    assert back.prediction == s.prediction and back.correct == s.correct
    assert np.array_equal(back.gold_attention, s.gold_attention)


def test_an_example_another_worker_holds_is_skipped_and_the_result_stops_at_the_first_gap(tmp_path, scored):
    first = kv75.base_examples(kv75.spec_params(1))[0].example_id
    with kv75.claimed(tmp_path, first) as mine:
        assert mine
        with kv75.claimed(tmp_path, first) as again:  # a second worker on the same out
            assert not again
        result = kv75.run_kv75(MODEL, 3, tmp_path, log=lambda *_: None)
    assert [c[0][0] for c in scored] == ["kv-retrieval-75_keys.jsonl.gz:2", "kv-retrieval-75_keys.jsonl.gz:3"]
    assert result is None  # examples 2 and 3 wait for the first
    scored.clear()
    result = kv75.run_kv75(MODEL, 3, tmp_path, log=lambda *_: None)  # the lock is free again: the gap is filled
    assert [c[0][0] for c in scored] == [first]
    assert result.params.n_examples == 3 and set(result.curves["n"]) == {3}


def test_a_worker_killed_mid_example_frees_its_claim(tmp_path):
    import subprocess
    import sys

    code = ("import sys, time; from pathlib import Path; from interp.analysis.recall import kv75\n"
            "with kv75.claimed(Path(sys.argv[1]), 'x') as mine:\n    print(mine, flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "True"
        with kv75.claimed(tmp_path, "x") as mine:
            assert not mine
    finally:
        proc.kill()
        proc.wait()
    with kv75.claimed(tmp_path, "x") as mine:
        assert mine


def test_contrasts_pair_positions_within_examples_and_answer_kinds_sort_the_answers():
    import pandas as pd

    rows = []
    for i, (lp0, lp49) in enumerate([(-5.0, -1.0), (-6.0, -1.0), (-4.0, -3.0)]):
        for pos, lp, pred in ((0, lp0, ' "nope"\n'), (24, -9.0, "\n"), (49, lp49, f' "{UUID_A}"\n'), (74, -9.5, " 42")):
            rows.append({"example_id": f"e{i}", "gold_position": pos, "logprob": lp, "choice_correct": float(pos == 0),
                         "prediction": pred, "answer": UUID_A if i == 0 else UUID_B})
    ex = pd.DataFrame(rows)
    c = kv75.position_contrasts(ex, n_boot=200).set_index(["metric", "contrast"])
    assert c.loc[("logprob", "49 - 0"), "mean"] == pytest.approx((4 + 5 + 1) / 3)
    assert 1 <= c.loc[("logprob", "49 - 0"), "lo"] <= c.loc[("logprob", "49 - 0"), "hi"] <= 5
    assert c.loc[("choice_correct", "ends - middle"), "mean"] == 0.5
    assert list(c.loc["best_logprob", "mean"]) == [0, 0, 3, 0]
    kinds = kv75.answer_kinds(ex, {"e0": "x", "e1": f"k {UUID_A} v", "e2": "y"}).set_index("gold_position")
    assert kinds.loc[49, ["the value", "uuid in the prompt", "uuid elsewhere"]].tolist() == [1, 1, 1]
    assert kinds.loc[24, "empty"] == 3 and kinds.loc[74, "other"] == 3 and kinds.loc[0, "other"] == 3


UUID_A = "2a8d601d-1d69-4e64-9f90-8ad825a74195"
UUID_B = "973f4ff1-00a2-4866-963d-b351b8666667"
