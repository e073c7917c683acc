"""Tiny random twins: a `transformers` model of each family, saved and loaded through our converter, must
give the same logits as our model. Catches wrong layouts, norm conventions and masks in seconds."""

from __future__ import annotations

import pytest
import torch

from interp.model.load import load_hf_dir


def _randomize(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def _hf_twin(family: str):
    import transformers as tf

    if family == "llama":
        cfg = tf.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                             tie_word_embeddings=True, rope_theta=10_000.0)
        return tf.LlamaForCausalLM(cfg)
    if family == "gemma3":
        cfg = tf.Gemma3TextConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                                  num_attention_heads=4, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
                                  max_position_embeddings=128, sliding_window=4,
                                  layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                                  tie_word_embeddings=True)
        return tf.Gemma3ForCausalLM(cfg)
    cfg = tf.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=128)
    return tf.GPT2LMHeadModel(cfg)


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_tiny_twin_logits_match_transformers(family, tmp_path):
    hf = _hf_twin(family).eval()
    hf.config._attn_implementation = "eager"
    _randomize(hf, seed=1)
    hf.save_pretrained(tmp_path)
    ours = load_hf_dir(tmp_path).eval()
    # long enough to cross Gemma's tiny sliding window of 4 several times
    tokens = torch.randint(0, 64, (2, 23), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = hf(tokens).logits
        got = ours(tokens)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_gemma_local_layers_really_use_the_window(tmp_path):
    """The same weights with the window widened give different logits: the window is not a no-op."""
    hf = _hf_twin("gemma3").eval()
    _randomize(hf, seed=2)
    hf.save_pretrained(tmp_path)
    ours = load_hf_dir(tmp_path).eval()
    wide = type(ours)(ours.cfg.replace(sliding_window=1000))
    wide.load_state_dict(ours.state_dict())
    tokens = torch.randint(0, 64, (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        near = ours(tokens)[:, :4]
        far = ours(tokens)[:, 6:]
        assert torch.allclose(near, wide(tokens)[:, :4], atol=1e-5)  # inside the window nothing differs
        assert not torch.allclose(far, wide(tokens)[:, 6:], atol=1e-3)
