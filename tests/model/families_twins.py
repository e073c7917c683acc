"""Tiny random `transformers` twins of every supported family, saved as a Hugging Face folder.

Each twin has several layers, grouped-query attention where the family has it, and the family's
distinguishing features switched on (RoPE scaling variants, a sliding window shorter than the test prompt,
soft-capping, partial rotary, parallel residual, fused projections), so a converter or component that
ignores one of them gives different logits."""

from __future__ import annotations

import torch

VOCAB = 96
PROMPT_LEN = 23  # longer than every window below and than the RoPE variants' original context

_COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=64, bos_token_id=2, eos_token_id=1, pad_token_id=0)


def _llama(**rope):
    import transformers as tf

    return tf.LlamaForCausalLM(tf.LlamaConfig(**_COMMON, rope_parameters={"rope_theta": 500.0, **rope},
                                              tie_word_embeddings=False))


TWINS = {
    "llama": lambda: _llama(rope_type="default"),
    "llama-bias": lambda: __import__("transformers").LlamaForCausalLM(__import__("transformers").LlamaConfig(
        **_COMMON, attention_bias=True, mlp_bias=True, head_dim=8, tie_word_embeddings=True)),
    "llama3-rope": lambda: _llama(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                  original_max_position_embeddings=16),
    "llama-linear-rope": lambda: _llama(rope_type="linear", factor=2.0),
    "llama-dynamic-rope": lambda: _llama(rope_type="dynamic", factor=2.0),
    "llama-yarn-rope": lambda: _llama(rope_type="yarn", factor=4.0, original_max_position_embeddings=16),
    "llama-longrope": lambda: _llama(rope_type="longrope", short_factor=[1.0 + i / 8 for i in range(8)],
                                     long_factor=[2.0 + i / 4 for i in range(8)], original_max_position_embeddings=16),
    "mistral": lambda: _tf("MistralForCausalLM", "MistralConfig", sliding_window=5, head_dim=16),
    "qwen2": lambda: _tf("Qwen2ForCausalLM", "Qwen2Config", use_sliding_window=True, sliding_window=5,
                         max_window_layers=1),
    "qwen3": lambda: _tf("Qwen3ForCausalLM", "Qwen3Config", head_dim=24),
    "gemma2": lambda: _tf("Gemma2ForCausalLM", "Gemma2Config", head_dim=16, query_pre_attn_scalar=24,
                          sliding_window=5, attn_logit_softcapping=3.0, final_logit_softcapping=4.0),
    "gemma3": lambda: _tf("Gemma3ForCausalLM", "Gemma3TextConfig", head_dim=16, query_pre_attn_scalar=16,
                          sliding_window=5, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                          rope_parameters={"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 1e6},
                                           "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}),
    "phi3": lambda: _tf("Phi3ForCausalLM", "Phi3Config", sliding_window=7, original_max_position_embeddings=16,
                        rope_parameters={"rope_type": "longrope", "rope_theta": 1e4, "partial_rotary_factor": 0.5,
                                         "short_factor": [1.0, 1.5, 2.0, 2.5], "long_factor": [3.0, 4.0, 5.0, 6.0],
                                         "original_max_position_embeddings": 16}),
    "gpt_neox": lambda: _tf("GPTNeoXForCausalLM", "GPTNeoXConfig", num_key_value_heads=None, rotary_pct=0.25),
    "gpt_neox-serial": lambda: _tf("GPTNeoXForCausalLM", "GPTNeoXConfig", num_key_value_heads=None, rotary_pct=0.5,
                                   use_parallel_residual=False),
    "olmo2": lambda: _tf("Olmo2ForCausalLM", "Olmo2Config"),
    "gpt2": lambda: __import__("transformers").GPT2LMHeadModel(__import__("transformers").GPT2Config(
        vocab_size=VOCAB, n_embd=64, n_layer=3, n_head=4, n_positions=64, bos_token_id=2, eos_token_id=1)),
}


def _tf(model_cls: str, config_cls: str, **changes):
    import transformers as tf

    kw = {**_COMMON, **changes}
    if kw.get("num_key_value_heads") is None:
        kw.pop("num_key_value_heads")
    return getattr(tf, model_cls)(getattr(tf, config_cls)(**kw))


def randomize(model: torch.nn.Module, seed: int, std: float = 0.2) -> None:
    """Random weights of a realistic scale: N(0, std) matrices and biases, norm scales near 1 (or near 0 for
    the families that store w of x * (1 + w))."""
    gen = torch.Generator().manual_seed(seed)
    plus_one = model.config.model_type.startswith("gemma")
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * std
            if "norm" in name and p.ndim == 1 and name.endswith("weight") and not plus_one:
                noise = 1 + noise
            p.copy_(noise)


def build_twin(family: str, folder, seed: int = 1):
    """Build, randomise and save the twin; return it in eval mode with eager attention."""
    hf = TWINS[family]().eval()
    randomize(hf, seed)
    hf.save_pretrained(folder)
    hf.config._attn_implementation = "eager"
    return hf


def prompt(seed: int = 0, batch: int = 2, length: int = PROMPT_LEN) -> torch.Tensor:
    return torch.randint(3, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


WORDS = ("<pad> <eos> <bos> the eiffel tower is located in city of paris rome london berlin louvre museum "
         "capital france italy a an and to it sport plays michael jordan basketball tennis golf language "
         "official spoken speaks people who what where when which on at by for from with was were be been").split()


def word_tokenizer():
    """A whitespace word-level tokenizer over WORDS plus filler words up to VOCAB, so text prompts work on
    the twins (ids 0, 1, 2 are pad, eos, bos as in the twins' configs)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = list(WORDS) + [f"w{i}" for i in range(VOCAB - len(WORDS))]
    vocab = {w: i for i, w in enumerate(words[:VOCAB])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")


def load_twin_with_words(family: str, folder, seed: int = 1):
    """The twin loaded through load_model, with the word tokenizer (a saved one would be read back as the
    family's own tokenizer class, which knows none of these words)."""
    from interp.model.load import load_model

    build_twin(family, folder, seed)
    model = load_model(str(folder))
    model.tokenizer = word_tokenizer()
    return model


# Twins whose every computation-changing setting survives a trip through GGUF *and* transformers' GGUF reader,
# which fills what the metadata does not say from its config classes' defaults: so Gemma keeps
# query_pre_attn_scalar = head_dim = 256 (llama.cpp scales queries by the head size; transformers' default is
# 256) and its default soft-caps, Qwen3 the default head_dim of 128, GPT-2 1024 positions, and Phi-3 and
# Mistral no window.
GGUF_TWINS = {
    "llama": TWINS["llama"],
    "mistral": lambda: _tf("MistralForCausalLM", "MistralConfig", sliding_window=None, head_dim=16),
    "qwen2": lambda: _tf("Qwen2ForCausalLM", "Qwen2Config"),
    "qwen3": lambda: _tf("Qwen3ForCausalLM", "Qwen3Config", head_dim=128),
    "gemma2": lambda: _tf("Gemma2ForCausalLM", "Gemma2Config", head_dim=256, query_pre_attn_scalar=256,
                          sliding_window=5),
    "gemma3": lambda: _tf("Gemma3ForCausalLM", "Gemma3TextConfig", head_dim=256, query_pre_attn_scalar=256,
                          sliding_window=5, num_hidden_layers=6),
    "phi3": lambda: _tf("Phi3ForCausalLM", "Phi3Config", sliding_window=None),
    # transformers' GGUF reader sizes GPT-2's position table from its default n_positions, not the file's
    "gpt2": lambda: __import__("transformers").GPT2LMHeadModel(__import__("transformers").GPT2Config(
        vocab_size=VOCAB, n_embd=64, n_layer=3, n_head=4, n_positions=1024, bos_token_id=2, eos_token_id=1)),
}


# GGUF twins that transformers' GGUF reader would misread (it ignores these metadata keys), checked against
# the same twin loaded from its Hugging Face folder instead.
GGUF_FOLDER_TWINS = {
    "gemma2-caps": lambda: _tf("Gemma2ForCausalLM", "Gemma2Config", head_dim=256, query_pre_attn_scalar=256,
                               sliding_window=5, attn_logit_softcapping=3.0, final_logit_softcapping=4.0),
    "gemma3-linear-rope": lambda: _tf(
        "Gemma3ForCausalLM", "Gemma3TextConfig", head_dim=256, query_pre_attn_scalar=256, sliding_window=5,
        num_hidden_layers=6,
        rope_parameters={"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 1e5},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 1e3}}),
}


def build_gguf_twin(family: str, folder, seed: int = 1):
    """A GGUF_TWINS or GGUF_FOLDER_TWINS entry built, randomised and saved as a Hugging Face folder (eval mode,
    eager attention)."""
    hf = {**GGUF_FOLDER_TWINS, **GGUF_TWINS}[family]().eval()
    randomize(hf, seed)
    hf.save_pretrained(folder)
    hf.config._attn_implementation = "eager"
    return hf
