"""Every family llama.cpp writes, as a tiny random twin converted to GGUF the way llama.cpp's converter does
(tests/model/gguf_writer.py), loads through `load_model(file.gguf)` and computes what transformers computes
reading the same file (within 1e-4, fp32), and what interp computes from the twin's Hugging Face folder.

transformers cannot read gptneox or olmo2 GGUF files, and ignores some metadata (RoPE scaling, Phi-3's
partial rotary and window, Gemma's soft-caps): those twins are checked against the folder load only, which
test_families.py checks against transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.errors import CorruptModelError
from interp.model.load import load_model
from tests.model.families_twins import GGUF_FOLDER_TWINS, GGUF_TWINS, build_gguf_twin, build_twin, prompt
from tests.model.gguf_writer import hf_from_gguf, write_gguf

# twins of test_families.py (and GGUF_FOLDER_TWINS) whose GGUF only interp reads as written
FOLDER_ONLY = ("gpt_neox", "gpt_neox-serial", "olmo2", "phi3", "mistral", "llama-bias", "llama-linear-rope",
               "llama-yarn-rope", "llama3-rope", *GGUF_FOLDER_TWINS)


def _convert(family: str, tmp_path, twins: str = "gguf", **kw):
    """The twin of GGUF_TWINS / GGUF_FOLDER_TWINS (twins="gguf") or of TWINS ("folder"), saved as a folder
    and converted to GGUF."""
    build = build_gguf_twin if twins == "gguf" or family in GGUF_FOLDER_TWINS else build_twin
    hf = build(family, tmp_path / "hf")
    return hf, write_gguf(hf, tmp_path / f"{family}.gguf", **kw)


def _logits(model, tokens):
    with torch.no_grad():
        out = model(tokens)
    return out if isinstance(out, torch.Tensor) else out.logits


@pytest.mark.parametrize("family", sorted(GGUF_TWINS))
def test_logits_match_transformers_reading_the_same_file(family, tmp_path):
    hf, path = _convert(family, tmp_path)
    ours = load_model(str(path), use_cache=False)
    tokens = prompt()
    got, theirs = _logits(ours, tokens), _logits(hf_from_gguf(path), tokens)
    torch.testing.assert_close(got, theirs, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got, _logits(load_model(str(tmp_path / "hf")), tokens), atol=1e-5, rtol=1e-5)
    assert ours.cfg.architecture == {"mistral": "llama"}.get(family, family)


@pytest.mark.parametrize("family", FOLDER_ONLY)
def test_logits_match_the_folder_load(family, tmp_path):
    hf, path = _convert(family, tmp_path, twins="folder")
    tokens = prompt()
    got = _logits(load_model(str(path), use_cache=False), tokens)
    torch.testing.assert_close(got, _logits(load_model(str(tmp_path / "hf")), tokens), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got, _logits(hf, tokens), atol=1e-4, rtol=1e-4)


def test_f16_tensors_load_as_transformers_reads_them(tmp_path):
    hf, path = _convert("qwen3", tmp_path, f16=True)
    tokens = prompt()
    got = _logits(load_model(str(path), use_cache=False), tokens)
    torch.testing.assert_close(got, _logits(hf_from_gguf(path), tokens), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got, _logits(hf, tokens), atol=1e-4)  # the weights were rounded, so f16 was read


def test_the_read_metadata_is_not_a_no_op(tmp_path):
    """Phi-3's window and LongRoPE factors, GPT-NeoX's partial rotary and Gemma-2's soft-caps come from the
    file: dropping any of them changes the logits."""
    tokens = prompt(batch=1)
    for family, change in (("phi3", dict(sliding_window=None, layer_types=None)), ("gpt_neox", dict(rotary_dim=None)),
                           ("phi3", dict(rope_scaling=None, reencode_at=None)),
                           ("gemma2-caps", dict(attn_softcap=None, final_logit_softcap=None))):
        _, path = _convert(family, tmp_path / family, twins="folder")
        ours = load_model(str(path), use_cache=False)
        other = type(ours)(ours.cfg.replace(**change)).eval()
        other.load_state_dict(ours.state_dict())
        assert not torch.allclose(_logits(ours, tokens), _logits(other, tokens), atol=1e-3), (family, change)


def test_tokenizer_is_built_for_architectures_transformers_cannot_read(tmp_path):
    _, path = _convert("olmo2", tmp_path, twins="folder")
    ours = load_model(str(path), use_cache=False)
    assert ours.tokenizer is not None and ours.tokenizer.convert_ids_to_tokens(2) == ours.tokenizer.bos_token


def test_unknown_architecture_is_refused_listing_the_supported(tmp_path):
    _, path = _convert("qwen2", tmp_path, arch_name="mamba")
    with pytest.raises(CorruptModelError, match=r"architecture 'mamba' is not supported; interp reads llama, .*gpt2"):
        load_model(str(path), use_cache=False)


def test_a_tensor_nobody_reads_stops_the_load(tmp_path):
    # layer 0 has no output bias, so the model has none: this one would be dropped
    _, path = _convert("qwen2", tmp_path, extra_tensors={"blk.1.attn_output.bias": np.zeros(64, np.float32)})
    with pytest.raises(CorruptModelError, match="would not use, first blk.1.attn_output.bias"):
        load_model(str(path), use_cache=False)


@pytest.mark.parametrize("meta, message", [
    ({"logit_scale": 2.0}, "metadata qwen2.logit_scale = 2.0 is not implemented"),
    ({"rope.scaling.type": "mystery"}, "RoPE scaling type 'mystery'"),
    ({"attention.causal": False}, "causal decoders only"),
])
def test_metadata_that_changes_the_computation_is_refused_by_name(tmp_path, meta, message):
    _, path = _convert("qwen2", tmp_path, extra_meta=meta)
    with pytest.raises(CorruptModelError, match=message):
        load_model(str(path), use_cache=False)


@pytest.mark.parametrize("family", ["phi3", "gpt2"])
def test_the_weights_cache_gives_back_the_same_model(family, tmp_path, monkeypatch):
    """The second load reads the dequantized weights and config cached as safetensors + JSON (LongRoPE
    factors, layer types and learned positions included) and computes the same logits."""
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    _, path = _convert(family, tmp_path, twins="folder")
    first = load_model(str(path))
    assert len(list((tmp_path / "cache" / "weights").glob("*/model.safetensors"))) == 1
    import interp.model.gguf as gguf_module

    monkeypatch.setattr(gguf_module, "read_gguf", lambda p: pytest.fail("the cached weights were not used"))
    second = load_model(str(path))
    assert second.cfg == first.cfg and second.cfg.rope_scaling == first.cfg.rope_scaling
    tokens = prompt()
    torch.testing.assert_close(_logits(second, tokens), _logits(first, tokens), atol=0, rtol=0)
