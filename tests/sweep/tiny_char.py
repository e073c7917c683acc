"""A tiny random model with a character tokenizer, importable by Ray workers (they load it by reference)."""

from __future__ import annotations

from tests.tiny import tiny_model

CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;'\"{}()[]?!-_\n"


def char_tokenizer():
    import tokenizers
    from tokenizers import Regex, decoders, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, **{c: i + 1 for i, c in enumerate(CHARS)}}
    tok = tokenizers.Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


def tiny_char_model():
    """The same seeded model in every process: the serial run and each worker read identical weights."""
    m = tiny_model("llama", d_vocab=len(CHARS) + 1, n_ctx=1024)
    m.tokenizer = char_tokenizer()
    return m


def fact(i: int, subject: str = "Eiffel Tower", prompt: str = "The {} is in"):
    from interp.analysis.facts.records import FactRecord

    return FactRecord(i, prompt, subject, "Paris", "Rome", f"P{i % 2}",
                      paraphrase_prompts=(f"{subject} is in",), neighborhood_prompts=("The Louvre is in",),
                      generation_prompts=(f"The {subject} is",))


FACTS = (fact(0), fact(1, "Big Ben", "The {} stands in"), fact(2, "Colosseum", "{} is located in"),
         fact(3, "Tokyo Tower"), fact(4, "Golden Gate", "{} is a bridge in"))
