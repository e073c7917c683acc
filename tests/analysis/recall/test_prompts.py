"""Tests for RecallExample (the paper's templates, spans, moving the gold), token location and scoring."""

from __future__ import annotations

import dataclasses

import pytest

from interp.analysis.recall.prompts import (
    KV_INSTRUCTION,
    QA_INSTRUCTION,
    RecallExample,
    answer_token_ids,
    is_correct,
    locate_tokens,
    normalize_answer,
)
from interp.analysis.recall.synthetic import WORDS, make_kv_examples, make_qa_examples, make_word_kv_examples
from interp.errors import InvalidInputError

GENERATORS = [make_kv_examples, make_word_kv_examples, make_qa_examples]
OPTIONS = [dict(), dict(query_aware=True), dict(repeat_gold=True), dict(query_aware=True, repeat_gold=True)]


@pytest.fixture(scope="module")
def bos_tokenizer():
    """A tiny fast word-level tokenizer that prepends [BOS], to test the special-token offset."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[BOS]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tok = tokenizers.Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.post_processor = TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="[BOS]", unk_token="[UNK]")

# --- templates: the paper's exact strings (its tests/test_prompting.py) -------------------------

KV_RECORDS = (("test key1", "test value1"), ("test key2", "test value2"), ("test key3", "test value3"))
QA_RECORDS = (("first doc", "first doc text"), ("second doc", "second doc text"))


def test_kv_prompt_matches_the_paper():
    ex = RecallExample("kv", KV_RECORDS, 1, KV_INSTRUCTION, "test key2", ("test value2",))
    body = '{"test key1": "test value1",\n "test key2": "test value2",\n "test key3": "test value3"}'
    tail = f'JSON data:\n{body}\n\nKey: "test key2"\nCorresponding value:'
    assert ex.prompt() == f"{KV_INSTRUCTION}\n\n{tail}"
    query_aware = dataclasses.replace(ex, query_aware=True)
    assert query_aware.prompt() == f'{KV_INSTRUCTION}\n\nKey: "test key2"\n\n{tail}'


def test_qa_prompt_matches_the_paper():
    ex = RecallExample("qa", QA_RECORDS, 1, QA_INSTRUCTION, "test question", ("x",))
    docs = "Document [1](Title: first doc) first doc text\nDocument [2](Title: second doc) second doc text"
    tail = f"{docs}\n\nQuestion: test question\nAnswer:"
    assert ex.prompt() == f"{QA_INSTRUCTION}\n\n{tail}"
    qa = dataclasses.replace(ex, query_aware=True)
    assert qa.prompt() == f"{QA_INSTRUCTION}\n\nQuestion: test question\n\n{tail}"


def test_repeat_gold_appends_the_gold_item_to_the_context():
    kv = RecallExample("kv", KV_RECORDS, 1, KV_INSTRUCTION, "test key2", ("test value2",), repeat_gold=True)
    assert '"test key3": "test value3",\n "test key2": "test value2"}\n\nKey:' in kv.prompt()
    qa = RecallExample("qa", QA_RECORDS, 0, QA_INSTRUCTION, "q", ("x",), repeat_gold=True)
    assert qa.prompt().endswith("text\nDocument [3](Title: first doc) first doc text\n\nQuestion: q\nAnswer:")


def test_invalid_examples_are_refused():
    with pytest.raises(ValueError, match="task"):
        RecallExample("nope", KV_RECORDS, 0, "", "test key1", ("test value1",))
    with pytest.raises(ValueError, match="gold_position"):
        RecallExample("kv", KV_RECORDS, 3, "", "test key1", ("test value1",))
    with pytest.raises(ValueError, match="key"):
        RecallExample("kv", KV_RECORDS, 0, "", "test key2", ("test value2",))

@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("make", GENERATORS)
def test_char_spans_slice_out_the_items_and_the_question(make, options):
    for ex in make(2, 5, seed=0, gold_positions=[2], **options):
        prompt = ex.prompt()
        assert [prompt[s:e] for s, e in ex.item_char_spans()] == list(ex.items)
        spans = ex.gold_char_spans()
        assert prompt[slice(*spans[0])] == ex.gold_item
        if ex.repeat_gold:
            assert prompt[slice(*spans[1])].endswith(ex.gold_item.split(")", 1)[-1])
        questions = ex.question_char_spans()
        assert len(questions) == (2 if ex.query_aware else 1)
        assert all(prompt[s:e] == ex.question for s, e in questions)
        assert prompt.endswith("Corresponding value:" if ex.task != "qa" else "Answer:")

def test_with_gold_at_moves_only_the_gold_item():
    ex = make_qa_examples(1, 6, seed=4, gold_positions=[1])[0]
    moved = ex.with_gold_at(4)
    assert moved.gold_position == 4 and moved.gold_item.startswith("Document [5]")
    assert moved.records[4] == ex.records[1]
    distractors = [r for i, r in enumerate(ex.records) if i != 1]
    assert [r for i, r in enumerate(moved.records) if i != 4] == distractors
    assert ex.with_gold_at(-1).gold_position == 5
    for bad in (6, -7):
        with pytest.raises(InvalidInputError, match="out of range"):
            ex.with_gold_at(bad)
    with pytest.raises(InvalidInputError, match="out of range"):
        make_kv_examples(1, 4, seed=0, gold_positions=[4])

# --- tokens -------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", GENERATORS)
def test_located_tokens_decode_to_text_containing_the_item(smollm2_tokenizer, make):
    tok = smollm2_tokenizer
    for ex in make(2, 8, seed=5, gold_positions=[0, 7], query_aware=True, repeat_gold=True):
        prompt = ex.prompt()
        spans = ex.item_char_spans() + ex.gold_char_spans() + ex.question_char_spans()
        ranges = locate_tokens(tok, prompt, spans, add_special_tokens=False)
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        for (s, e), (a, b) in zip(spans, ranges):
            assert 0 <= a < b <= len(ids)
            assert prompt[s:e] in tok.decode(ids[a:b])
            # minimal: dropping the first or last token loses part of the item
            assert prompt[s:e] not in tok.decode(ids[a + 1 : b])
            assert prompt[s:e] not in tok.decode(ids[a : b - 1])


def test_locate_tokens_counts_a_bos_token(bos_tokenizer):
    text = "apple river stone cloud"
    spans = [(6, 11), (12, 23)]
    assert locate_tokens(bos_tokenizer, text, spans, add_special_tokens=False) == [(1, 2), (2, 4)]
    assert locate_tokens(bos_tokenizer, text, spans, add_special_tokens=True) == [(2, 3), (3, 5)]


def test_locate_tokens_refuses_bad_input(bos_tokenizer):
    with pytest.raises(InvalidInputError, match="outside"):
        locate_tokens(bos_tokenizer, "apple", [(2, 9)])
    with pytest.raises(InvalidInputError, match="fast tokenizer"):
        locate_tokens(object(), "apple", [(0, 1)])


def test_answer_token_ids_continue_the_prompt(smollm2_tokenizer):
    tok = smollm2_tokenizer
    ex = make_word_kv_examples(1, 5, seed=0)[0]
    answer = answer_token_ids(tok, ex.answers[0])
    assert answer == tok(" " + ex.answers[0], add_special_tokens=False)["input_ids"]
    prompt_ids = tok(ex.prompt(), add_special_tokens=False)["input_ids"]
    joint = tok(ex.prompt() + " " + ex.answers[0], add_special_tokens=False)["input_ids"]
    assert prompt_ids + answer == joint
    with pytest.raises(InvalidInputError, match="tokenizes to nothing"):
        answer_token_ids(tok, "")


# --- scoring ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "normalized"), [
    ("The Eiffel Tower!", "eiffel tower"),
    ("  A  cat,\tan   apple. ", "cat apple"),
    ("Wilhelm Conrad Röntgen", "wilhelm conrad röntgen"),
    ("theatre (the play)", "theatre play"),
    ("e61e84f4-02d2-4748", "e61e84f402d24748"),
])
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


@pytest.mark.parametrize(("prediction", "answers", "correct"), [
    ("Röntgen, Wilhelm Conrad Röntgen won it.\nMore", ["Wilhelm Conrad Röntgen"], True),
    (" The Beatles", ["the beatles", "Beatles"], True),
    ("London.\nParis", ["Paris"], False),  # only the first line counts
    ("\nParis", ["Paris"], False),
    ("paris", ["Lyon", "PARIS"], True),
    ("", ["Paris"], False),
    ("anything at all", ["The"], False),  # an answer that normalises to nothing matches nothing
    (' "e61e84f4-02d2-4748-bf5b-0955c96aaf81"', ("e61e84f4-02d2-4748-bf5b-0955c96aaf81",), True),
])
def test_is_correct(prediction, answers, correct):
    assert is_correct(prediction, answers) is correct
