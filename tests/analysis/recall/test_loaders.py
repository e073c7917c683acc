"""Tests for the seeded example generators and the readers of the paper's released files."""

from __future__ import annotations

import copy
import gzip
import json
import random
import re
from pathlib import Path

import pytest

from interp.analysis.recall.loaders import load_kv_file, load_qa_file
from interp.analysis.recall.prompts import KV_INSTRUCTION, QA_INSTRUCTION
from interp.analysis.recall.synthetic import WORDS, make_kv_examples, make_qa_examples, make_word_kv_examples
from interp.errors import DataFormatError, InvalidInputError

GENERATORS = [make_kv_examples, make_word_kv_examples, make_qa_examples]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
OPTIONS = [dict(), dict(query_aware=True), dict(repeat_gold=True), dict(query_aware=True, repeat_gold=True)]


# --- generators ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make", GENERATORS)
def test_generators_are_deterministic_under_a_seed(make):
    assert make(3, 6, seed=7, gold_positions=[0, 5]) == make(3, 6, seed=7, gold_positions=[0, 5])
    assert make(3, 6, seed=7) == make(3, 6, seed=7)
    assert make(3, 6, seed=7) != make(3, 6, seed=8)


@pytest.mark.parametrize("make", GENERATORS)
def test_a_sweep_places_the_same_content_at_each_position(make):
    examples = make(2, 7, seed=1, gold_positions=[0, 3, -1])
    assert [e.gold_position for e in examples] == [0, 3, 6] * 2
    for group in (examples[:3], examples[3:]):
        assert len({e.example_id for e in group}) == 1
        assert len({frozenset(e.records) for e in group}) == 1
        assert len({e.records[e.gold_position] for e in group}) == 1
    # Example i does not depend on how many examples or which positions were asked for.
    assert make(1, 7, seed=1, gold_positions=[3])[0] == examples[1]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("make", GENERATORS)
def test_the_answer_is_found_only_in_the_gold_item(make, options):
    for ex in make(4, 10, seed=3, gold_positions=[0, 4, 9], **options):
        prompt, answer = ex.prompt().lower(), ex.answers[0].lower()
        assert answer in ex.gold_item.lower()
        gold_spans = ex.gold_char_spans()
        hits = [m.start() for m in re.finditer(re.escape(answer), prompt)]
        assert len(hits) == len(gold_spans) == (2 if ex.repeat_gold else 1)
        assert all(s <= h and h + len(answer) <= e for h, (s, e) in zip(hits, gold_spans))
        if ex.task == "qa":  # the entity asked about is named only in its own document
            entity = ex.records[ex.gold_position][0].lower()
            assert sum(entity in item.lower() for item in ex.items) == 1

def test_kv_examples_use_uuid4_strings():
    (ex,) = make_kv_examples(1, 20, seed=0)
    assert all(UUID.match(x) for pair in ex.records for x in pair)
    assert len({x for pair in ex.records for x in pair}) == 40


def test_word_kv_examples_use_distinct_words():
    (ex,) = make_word_kv_examples(1, 30, seed=0)
    words = [x for pair in ex.records for x in pair]
    assert len(set(words)) == 60 and set(words) <= set(WORDS)
    with pytest.raises(InvalidInputError, match="at most"):
        make_word_kv_examples(1, len(WORDS), seed=0)


def test_the_word_list_is_unique_and_substring_free():
    assert len(set(WORDS)) == len(WORDS) >= 200
    template = (KV_INSTRUCTION + 'JSON data: Key: Corresponding value:').lower()
    for w in WORDS:
        assert w == w.lower() and w not in template
        assert not any(w in other for other in WORDS if other != w), w


def test_qa_examples_ask_about_the_gold_document():
    for ex in make_qa_examples(8, 5, seed=2):
        title, text = ex.records[ex.gold_position]
        assert title in ex.question and ex.answers[0] in text
        assert ex.instruction == QA_INSTRUCTION and ex.question.endswith("?")

# --- the paper's files -------------------------------------------------------------------------


def distractor(i: int) -> dict:
    return {"id": str(1000 + i), "title": f"Title {i}", "text": f"Passage {i} says nothing useful.",
            "score": "1.05104", "hasanswer": False, "original_retrieval_index": i, "isgold": False}


GOLD = {"title": "Wilhelm Röntgen", "text": "Röntgen won the first Nobel Prize in Physics.",
        "hasanswer": True, "isgold": True}
QA_RECORD = {
    "question": "who got the first nobel prize in physics",
    "answers": ["Wilhelm Conrad Röntgen"],
    "ctxs": [distractor(0), GOLD, distractor(1), distractor(2)],
    "nq_annotated_gold": {"title": "Nobel Prize", "long_answer": "...", "chunked_long_answer": "...",
                          "short_answers": ["Wilhelm Conrad Röntgen"]},
}
K = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(3)]
V = [f"{i:08x}-1111-4111-9111-111111111111" for i in range(3)]
KV_RECORD = {"ordered_kv_records": [[K[0], V[0]], [K[1], V[1]], [K[2], V[2]]], "key": K[2], "value": V[2]}


def write(path: Path, lines: list, compress: bool = True) -> Path:
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    return path


def test_load_qa_file_reads_the_paper_format(tmp_path):
    second = copy.deepcopy(QA_RECORD)
    second["ctxs"] = [GOLD, distractor(3)]
    path = write(tmp_path / "nq-open-4_total_documents_gold_at_1.jsonl.gz", [QA_RECORD, second])
    (ex, ex2) = load_qa_file(path)
    assert ex.task == "qa" and ex.gold_position == 1 and ex2.gold_position == 0
    assert ex.question == QA_RECORD["question"] and ex.answers == ("Wilhelm Conrad Röntgen",)
    assert ex.gold_item == f"Document [2](Title: {GOLD['title']}) {GOLD['text']}"
    assert ex.items[0] == "Document [1](Title: Title 0) Passage 0 says nothing useful."
    assert ex.example_id == "nq-open-4_total_documents_gold_at_1.jsonl.gz:1"
    moved = ex.with_gold_at(3)
    assert moved.items[3].startswith("Document [4](Title: Wilhelm Röntgen)")
    assert [r[0] for r in moved.records[:3]] == ["Title 0", "Title 1", "Title 2"]


def test_load_qa_file_reads_plain_jsonl_and_falls_back_to_hasanswer(tmp_path):
    record = copy.deepcopy(QA_RECORD)
    for ctx in record["ctxs"]:
        del ctx["isgold"]
    record["ctxs"][2]["hasanswer"] = True
    (ex,) = load_qa_file(write(tmp_path / "qa.jsonl", ["", record, ""], compress=False), query_aware=True)
    assert ex.gold_position == 1 and ex.query_aware  # the first hasanswer document
    assert len(load_qa_file(write(tmp_path / "qa2.jsonl", [QA_RECORD] * 5, compress=False), limit=2)) == 2


def test_load_kv_file_reads_the_paper_format(tmp_path):
    (ex,) = load_kv_file(write(tmp_path / "kv-retrieval-3_keys.jsonl.gz", [KV_RECORD]), repeat_gold=True)
    assert ex.task == "kv" and ex.gold_position == 2 and ex.question == K[2] and ex.answers == (V[2],)
    assert ex.repeat_gold and ex.items[0] == f'"{K[0]}": "{V[0]}"'
    assert ex.with_gold_at(0).prompt().count(f'"{K[2]}": "{V[2]}"') == 2
    assert ex.prompt().endswith(f'}}\n\nKey: "{K[2]}"\nCorresponding value:')


def qa(change) -> dict:
    record = copy.deepcopy(QA_RECORD)
    change(record)
    return record


def kv(change) -> dict:
    record = copy.deepcopy(KV_RECORD)
    change(record)
    return record


def no_gold(r):
    for c in r["ctxs"]:
        c["isgold"] = c["hasanswer"] = False


QA_BAD = [
    ("not json", None, "not valid JSON"),
    ("[1, 2]", None, "not a JSON object"),
    (qa(lambda r: r.pop("question")), "question", "missing"),
    (qa(lambda r: r.update(question=7)), "question", "expected a string, found a number"),
    (qa(lambda r: r.update(answers="Röntgen")), "answers", "expected a list"),
    (qa(lambda r: r.update(answers=[])), "answers", "empty"),
    (qa(lambda r: r.update(answers=["x", None])), "answers[1]", "found null"),
    (qa(lambda r: r.pop("ctxs")), "ctxs", "missing"),
    (qa(lambda r: r.update(ctxs=[])), "ctxs", "empty"),
    (qa(lambda r: r["ctxs"].__setitem__(2, "text")), "ctxs[2]", "expected an object"),
    (qa(lambda r: r["ctxs"][0].pop("title")), "ctxs[0].title", "missing"),
    (qa(lambda r: r["ctxs"][3].update(text=3)), "ctxs[3].text", "expected a string"),
    (qa(lambda r: r["ctxs"][1].update(isgold="yes")), "ctxs[1].isgold", "expected true or false"),
    (qa(no_gold), "ctxs", "no document is marked"),
]
KV_BAD = [
    (kv(lambda r: r.pop("ordered_kv_records")), "ordered_kv_records", "missing"),
    (kv(lambda r: r.update(ordered_kv_records={})), "ordered_kv_records", "expected a list, found an object"),
    (kv(lambda r: r["ordered_kv_records"][1].append("x")), "ordered_kv_records[1]", "pair"),
    (kv(lambda r: r["ordered_kv_records"].append([K[0], "other"])), "ordered_kv_records", "duplicate keys"),
    (kv(lambda r: r.update(key=5)), "key", "expected a string"),
    (kv(lambda r: r.update(key="absent")), "key", "not among"),
    (kv(lambda r: r.pop("value")), "value", "missing"),
    (kv(lambda r: r.update(value=V[0])), "value", "not the one paired"),
]


@pytest.mark.parametrize(("load", "good", "bad", "field", "problem"),
                         [(load_qa_file, QA_RECORD, *case) for case in QA_BAD]
                         + [(load_kv_file, KV_RECORD, *case) for case in KV_BAD])
def test_a_malformed_record_names_its_line_and_field(tmp_path, load, good, bad, field, problem):
    path = write(tmp_path / "data.jsonl.gz", [good, good, bad, good])
    with pytest.raises(DataFormatError, match=problem) as info:
        load(path)
    err = info.value
    assert (err.line, err.field) == (3, field)
    message = str(err)
    assert str(path) in message and "line 3" in message
    assert (f"field '{field}'" in message) == (field is not None)


def test_unreadable_files_are_refused(tmp_path):
    data = gzip.compress(("\n".join(json.dumps(KV_RECORD) for _ in range(50)) + "\n").encode())
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="gzip stream is corrupt or truncated") as info:
        load_kv_file(truncated)
    assert info.value.line is not None and info.value.field is None
    garbage = tmp_path / "garbage.jsonl.gz"
    garbage.write_bytes(b"\x1f\x8b" + b"not really gzip" * 4)
    with pytest.raises(DataFormatError, match="line 1: the gzip stream"):
        load_kv_file(garbage)
    plain = write(tmp_path / "plain.jsonl.gz", [KV_RECORD], compress=False)
    with pytest.raises(DataFormatError, match="not gzip-compressed"):
        load_kv_file(plain)
    with pytest.raises(DataFormatError, match="holds no records"):
        load_qa_file(write(tmp_path / "empty.jsonl.gz", []))
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(json.dumps(KV_RECORD).encode() + b"\n\"caf\xe9\"\n")
    with pytest.raises(DataFormatError, match="line 2: the line is not UTF-8"):
        load_kv_file(latin1)
    with pytest.raises(InvalidInputError, match="no such file"):
        load_qa_file(tmp_path / "missing.jsonl.gz")


def _paper_kv_prompt(pairs: list[tuple[str, str]], key: str) -> str:
    """The paper's KV prompt (kv_retrieval.prompt filled by get_kv_retrieval_prompt), written out here
    independently of prompts.py: '{' before the first pair, ' ' before the others, ',\\n' between, '}' last."""
    body = "".join(("{" if i == 0 else " ") + f'"{k}": "{v}"' + (",\n" if i < len(pairs) - 1 else "}")
                   for i, (k, v) in enumerate(pairs))
    return f'{KV_INSTRUCTION}\n\nJSON data:\n{body}\n\nKey: "{key}"\nCorresponding value:'


@pytest.mark.parametrize("make", [make_word_kv_examples, make_kv_examples])
def test_synthetic_kv_prompts_equal_the_paper_format_file_of_the_same_items(tmp_path, make):
    """The synthetic builder and `--file` on a paper-format file holding the same pairs (gold at a random
    index, as the paper's make_kv_retrieval_data.py writes it) give the same text at every gold position,
    and that text is the paper's template."""
    positions = [0, 4, 9]
    synthetic = make(4, 10, seed=3, gold_positions=positions)
    rng = random.Random(0)
    records = []
    for base in synthetic[:: len(positions)]:
        pairs = [list(r) for r in base.records]
        gold = pairs.pop(base.gold_position)
        pairs.insert(rng.randrange(len(pairs) + 1), gold)
        records.append({"ordered_kv_records": pairs, "key": gold[0], "value": gold[1]})
    assert any(r["ordered_kv_records"][0][0] != r["key"] for r in records)  # the file's gold is not always first
    from_file = [ex.with_gold_at(p) for ex in load_kv_file(write(tmp_path / "same.jsonl.gz", records))
                 for p in positions]
    assert len(from_file) == len(synthetic)
    for a, b in zip(synthetic, from_file):
        assert a.prompt() == b.prompt() == _paper_kv_prompt(list(a.records), a.question)
        assert (a.gold_position, a.question, a.answers) == (b.gold_position, b.question, b.answers)
        assert a.records[a.gold_position] == (a.question, a.answers[0])
