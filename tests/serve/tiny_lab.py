"""The tiny model the lab tests run on: a seeded random 4-layer llama with a word-level tokenizer."""

from __future__ import annotations

from tests.tiny import tiny_model

# 64 words for the tiny model's 64-token vocabulary; a word outside it reads as [UNK]
WORDS = ("[UNK] [BOS] . , The the a is was located in city of country capital Eiffel Tower Louvre Colosseum "
         "Paris Rome London Berlin Madrid Tokyo France Italy museum famous tower stands It I You He She We They "
         "Because Therefore and but to from by with on at for as this that one two red blue big small old new "
         "river bridge street park").split()
assert len(WORDS) == 64, len(WORDS)


def tiny_tokenizer():
    """A fast word-level tokenizer over WORDS (offsets work, as ROME and causal tracing need)."""
    from tokenizers import Tokenizer
    from tokenizers.decoders import WordPiece
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.decoder = WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", bos_token="[BOS]")


def tiny_lab_model(seed: int = 0):
    model = tiny_model("llama", seed=seed, std=0.3, n_layers=4, name="tiny-lab", bos_token_id=1,
                       default_prepend_bos=True)
    model.tokenizer = tiny_tokenizer()
    return model
