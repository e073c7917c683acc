"""Device and dtype: tensors go straight to their dtype (norm scales stay fp32), device maps route each
block's tensors, and a model split by a map computes the same logits. (Several real devices are exercised
only where a GPU is lent, never in CI: here every map entry is the CPU.)"""

from __future__ import annotations

import pytest
import torch

from interp.errors import InvalidInputError
from interp.model.load import Placement, auto_device_map, load_model, resolve_device
from tests.model.families_twins import build_twin, prompt


def test_placement_picks_the_longest_matching_prefix():
    from interp.model.config import ModelConfig

    cfg = ModelConfig(n_layers=4, d_model=8, n_heads=2, d_head=4, d_mlp=8, d_vocab=10, n_ctx=8)
    place = Placement(torch.bfloat16, "cpu", {"blocks": "cpu", "blocks.3": "meta", "ln_final": "meta"}).bind(cfg)
    assert place.device_for("blocks.3.attn.w_q").type == "meta"
    assert place.device_for("blocks.30.attn.w_q").type == "cpu"  # "blocks.3" is not a prefix of "blocks.30"
    assert place.device_for("embed.W_E").type == "cpu"
    assert place("blocks.0.attn.w_q", torch.ones(2, 2)).dtype == torch.bfloat16
    assert place("blocks.0.ln1.w", torch.ones(2)).dtype == torch.float32  # norm scales stay fp32
    assert place("blocks.0.attn.q_norm.w", torch.ones(2)).dtype == torch.float32


def test_auto_map_spreads_blocks_in_order():
    m = auto_device_map("auto", n_layers=30, n_devices=4)
    layers = [m[f"blocks.{i}"] for i in range(30)]
    assert layers == sorted(layers) and set(layers) == {0, 1, 2, 3}
    assert m["embed"] == 0 and m["ln_final"] == 3 and m["unembed"] == 3
    assert auto_device_map("auto", n_layers=30, n_devices=1) is None
    with pytest.raises(InvalidInputError, match="Unknown device map"):
        auto_device_map("balanced", n_layers=30)


def test_auto_device_falls_back_to_cpu_and_refuses_missing_cuda():
    if not torch.cuda.is_available():
        assert resolve_device("auto").type in ("cpu", "mps")
        with pytest.raises(InvalidInputError, match="needs CUDA"):
            resolve_device("cuda")
    with pytest.raises(InvalidInputError, match="Unknown --device"):
        resolve_device("gpu7")


def test_a_mapped_model_computes_the_same(tmp_path):
    build_twin("qwen2", tmp_path)
    whole = load_model(str(tmp_path))
    split = load_model(str(tmp_path), device_map={"embed": "cpu", "blocks.0": "cpu", "blocks.1": "cpu",
                                                  "blocks.2": "cpu", "ln_final": "cpu"})
    tokens = prompt()
    with torch.no_grad():
        assert torch.equal(whole(tokens), split(tokens))


def test_bfloat16_load_is_bf16_and_close_to_transformers_bf16(tmp_path):
    """bf16 is not bit-identical to transformers (other kernels round differently), but it must be as close
    to the fp32 reference as transformers' own bf16 forward is."""
    import transformers

    hf32 = build_twin("gemma3", tmp_path)
    ours = load_model(str(tmp_path), dtype="bfloat16")
    assert ours.dtype == torch.bfloat16 and ours.blocks[0].attn.w_q.dtype == torch.bfloat16
    assert ours.blocks[0].ln1.w.dtype == torch.float32
    hf16 = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16,
                                                             attn_implementation="eager").eval()
    tokens = prompt()
    with torch.no_grad():
        reference = hf32(tokens).logits
        theirs = (hf16(tokens).logits.float() - reference).abs().max()
        mine = (ours(tokens).float() - reference).abs().max()
    assert mine <= 2 * theirs + 1e-3
    ours.to(torch.float16)  # moving the model keeps the norm scales in fp32
    assert ours.blocks[0].ln1.w.dtype == torch.float32 and ours.blocks[0].attn.w_q.dtype == torch.float16
