"""Tiny random models of each family, shared by every test (import as `from tests.tiny import ...`)."""

from __future__ import annotations

import torch

from interp.model.config import ModelConfig
from interp.model.transformer import Transformer

TINY = {
    "llama": ModelConfig(name="tiny-llama", architecture="llama", n_layers=2, d_model=32, n_heads=4, n_kv_heads=2,
                         d_head=8, d_mlp=48, d_vocab=64, n_ctx=128, rope_base=10_000.0, act="silu"),
    "gemma3": ModelConfig(name="tiny-gemma3", architecture="gemma3", n_layers=3, d_model=32, n_heads=4, n_kv_heads=1,
                          d_head=16, d_mlp=48, d_vocab=64, n_ctx=128, act="gelu_tanh", qk_norm=True,
                          sandwich_norm=True, embed_scale=32 ** 0.5, attn_scale=16.0, rope_base=1e6,
                          rope_base_local=1e4, sliding_window=4, layer_types=("local", "local", "global")),
    "gpt2": ModelConfig(name="tiny-gpt2", architecture="gpt2", n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=128,
                        d_vocab=64, n_ctx=128, norm="layer", positional="learned", act="gelu_tanh", gated_mlp=False,
                        qkv_bias=True, out_bias=True, mlp_bias=True, tie_embeddings=False),
}


def tiny_model(family: str, seed: int = 0, std: float = 0.2, **changes) -> Transformer:
    """A seeded random model; `changes` edit its config (e.g. n_layers=3; local layers stay consistent)."""
    cfg = TINY[family]
    if "n_layers" in changes and cfg.layer_types is not None and "layer_types" not in changes:
        n = changes["n_layers"]
        changes["layer_types"] = tuple(cfg.layer_types[i % len(cfg.layer_types)] for i in range(n))
    torch.manual_seed(seed)
    return Transformer(cfg.replace(**changes) if changes else cfg).init_weights(seed, std=std).eval()


CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;'\"{}()[]?!-_\n"


def char_tokenizer():
    """A fast character-level tokenizer (offsets included), so tiny models can read any prompt."""
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
    """The seeded tiny llama with the character tokenizer: the same weights in every process."""
    m = tiny_model("llama", d_vocab=len(CHARS) + 1, n_ctx=1024)
    m.tokenizer = char_tokenizer()
    return m
