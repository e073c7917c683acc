"""The lost-in-the-middle files, vendored: the existing loaders read them; closed-book and oracle prompts
are the paper's; scoring uses the paper's rule on the model's own greedy answers."""

from __future__ import annotations

import gzip
import json

import pytest

from interp.analysis.recall.loaders import load_qa_file
from interp.analysis.recall.paper_data import (
    KV_75,
    NQ_ORACLE,
    ClosedBookExample,
    closed_book,
    load_kv_75,
    load_nq_oracle,
    oracle_and_closed_book,
    score_answers,
)
from interp.analysis.recall.prompts import RecallExample, is_correct
from interp.errors import DataFormatError, InvalidInputError
from interp.model.generate import generate
from tests.tiny import tiny_char_model


def test_vendored_kv_file_is_the_75_key_task():
    examples = load_kv_75(limit=3)
    assert len(examples) == 3 and all(e.task == "kv" and e.n_items == 75 for e in examples)
    with gzip.open(KV_75, "rt", encoding="utf-8") as f:
        first = json.loads(f.readline())
    assert examples[0].question == first["key"] and examples[0].answers == (first["value"],)
    assert examples[0].records[examples[0].gold_position] == (first["key"], first["value"])
    assert examples[0].prompt().endswith(f'Key: "{first["key"]}"\nCorresponding value:')


def test_vendored_oracle_file_gives_one_gold_passage_and_the_closed_book_prompt():
    oracle = load_nq_oracle(limit=5)
    assert all(e.task == "qa" and e.n_items == 1 and e.gold_position == 0 for e in oracle)
    assert oracle[0].question == "who got the first nobel prize in physics"
    assert oracle[0].prompt().startswith("Write a high-quality answer")
    assert "Document [1](Title: List of Nobel laureates in Physics)" in oracle[0].prompt()
    books = closed_book(oracle)
    assert books[0].prompt() == "Question: who got the first nobel prize in physics\nAnswer:"
    assert [b.example_id for b in books] == [e.example_id for e in oracle]
    assert books[0].answers == oracle[0].answers == ("Wilhelm Conrad Röntgen",)


def test_whole_oracle_file_reads(tmp_path):
    assert len(load_nq_oracle()) == 2655


def test_malformed_oracle_line_names_line_and_field(tmp_path):
    path = tmp_path / "nq.jsonl"
    good = {"question": "q?", "answers": ["a"], "ctxs": [{"title": "t", "text": "x", "isgold": True}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "answers": []}) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_nq_oracle(path)
    assert info.value.line == 2 and info.value.field == "answers"


def _short_qa(i: int) -> RecallExample:
    return RecallExample("qa", (("Doc", f"the code is {i}"),), 0, "Answer.", f"what is code {i}?", (str(i),),
                         example_id=f"ex{i}")


def test_scores_are_the_models_greedy_answers_under_the_papers_rule():
    model = tiny_char_model()
    examples = [_short_qa(i) for i in range(5)]
    prompts = [b.prompt() for b in closed_book(examples)]
    rows = score_answers(model, prompts, [e.answers for e in examples], max_new_tokens=4, batch_size=2)
    for p, e, row in zip(prompts, examples, rows):
        alone = generate(model, p, max_new_tokens=4)  # batching (left padding) must not change the answer
        assert row["prediction"] == alone and not alone.startswith("Question")  # the answer only, no prompt
        assert row["correct"] == is_correct(alone, e.answers)
    out = oracle_and_closed_book(model, examples, max_new_tokens=4, batch_size=3)
    assert out["n"] == 5 and len(out["rows"]) == 5
    for name in ("oracle", "closed_book"):
        k = sum(r[f"{name}_correct"] for r in out["rows"])
        assert out[name]["accuracy"] == k / 5
        lo, hi = out[name]["ci95"]
        assert 0 <= lo <= k / 5 <= hi <= 1
    assert [r["closed_book"] for r in out["rows"]] == [r["prediction"] for r in rows]


def test_bad_inputs_are_one_sentence_errors():
    with pytest.raises(InvalidInputError, match="2 prompts but 1 answer lists"):
        score_answers(None, ["a", "b"], [["x"]])
    kv = load_kv_75(limit=1)
    with pytest.raises(InvalidInputError, match="Closed-book needs QA examples"):
        closed_book(kv)
    assert ClosedBookExample("q", ("a",)).prompt() == "Question: q\nAnswer:"
    assert NQ_ORACLE.exists() and load_qa_file(NQ_ORACLE, limit=1)[0].n_items == 1


def test_run_nq_draws_seeded_questions(monkeypatch):
    from interp.analysis.recall import paper_data

    seen = []
    monkeypatch.setattr(paper_data, "oracle_and_closed_book", lambda model, ex, **kw: seen.append(ex) or {"n": len(ex)})
    a = paper_data.run_nq(None, 7, seed=0)
    paper_data.run_nq(None, 7, seed=0)
    paper_data.run_nq(None, 7, seed=1)
    assert a["n"] == 7 and a["seed"] == 0
    ids = [[e.example_id for e in ex] for ex in seen]
    assert ids[0] == ids[1] != ids[2]
    assert len(set(ids[0])) == 7
