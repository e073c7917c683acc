"""Every supported family, as a tiny random `transformers` twin saved to a folder, loads through
`load_model(folder)` and computes what transformers computes: logits within 1e-4 (fp32), identical greedy
generations, the same hook names and shapes as the bundled models, and run_with_cache."""

from __future__ import annotations

import json

import pytest
import torch

from interp.errors import CorruptModelError
from interp.model import hook_names as hn
from interp.model.load import load_model
from tests.model.families_twins import PROMPT_LEN, TWINS, build_twin, prompt


@pytest.fixture(scope="module", params=sorted(TWINS))
def twin(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    hf = build_twin(request.param, folder)
    return request.param, hf, folder, load_model(str(folder))


def test_logits_match_transformers(twin):
    family, hf, _, ours = twin
    tokens = prompt()
    with torch.no_grad():
        expected = hf(tokens).logits
        got = ours(tokens)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_greedy_generation_matches_transformers(twin):
    family, hf, _, ours = twin
    tokens = prompt(seed=3, batch=1, length=12)
    hf.generation_config.eos_token_id = None  # run all 14 steps in both (min_new_tokens would mask EOS instead)
    with torch.no_grad():
        expected = hf.generate(tokens, max_new_tokens=14, do_sample=False, pad_token_id=0)[:, tokens.shape[1]:]
    got = ours.generate(tokens, max_new_tokens=14, stop_at_eos=False, do_sample=False)[:, tokens.shape[1]:]
    assert got.tolist() == expected.tolist()


def test_hook_names_and_shapes_as_for_the_bundled_models(twin):
    family, _, _, ours = twin
    cfg = ours.cfg
    tokens = prompt(batch=1, length=7)
    _, cache = ours.run_with_cache(tokens)
    b, p = tokens.shape
    for layer in range(cfg.n_layers):
        for name in (hn.resid_pre(layer), hn.resid_mid(layer), hn.resid_post(layer), hn.attn_out(layer),
                     hn.mlp_out(layer), hn.ln(layer, "ln1"), hn.ln(layer, "ln2")):
            assert tuple(cache[name].shape) == (b, p, cfg.d_model), name
        assert tuple(cache[hn.pattern(layer)].shape) == (b, cfg.n_heads, p, p)
        assert tuple(cache[hn.attn(layer, "k")].shape) == (b, p, cfg.n_kv_heads, cfg.d_head)
        assert tuple(cache[hn.mlp(layer, "post")].shape) == (b, p, cfg.d_mlp)
    # the cached residual stream is the one the logits come from (the cache reads the explicit pattern, the
    # plain forward the fused kernel: equal to float rounding)
    torch.testing.assert_close(ours.logits_from_resid(cache[hn.resid_post(cfg.n_layers - 1)]), ours(tokens),
                               atol=1e-5, rtol=1e-5)


def test_the_distinguishing_feature_is_not_a_no_op(tmp_path):
    """Turning each family's feature off in the config changes the logits: the parity above is not luck."""
    cases = {"gemma2": dict(attn_softcap=None), "gpt_neox": dict(parallel_residual=False),
             "llama3-rope": dict(rope_scaling=None), "phi3": dict(rotary_dim=None, rope_scaling=None),
             "mistral": dict(sliding_window=1000), "olmo2": dict(qk_norm_per_head=True)}
    tokens = prompt(batch=1)
    for family, change in cases.items():
        build_twin(family, tmp_path / family)
        ours = load_model(str(tmp_path / family))
        if family == "olmo2":  # per-head norms would need per-head weights: compare against no Q/K norm
            change = dict(qk_norm=False)
        other = type(ours)(ours.cfg.replace(**change)).eval()
        other.load_state_dict(ours.state_dict(), strict=False)
        with torch.no_grad():
            assert not torch.allclose(ours(tokens), other(tokens), atol=1e-3), family


def _edit_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


def test_unknown_architecture_is_refused_listing_the_supported(tmp_path):
    build_twin("llama", tmp_path)
    _edit_config(tmp_path, model_type="mamba")
    with pytest.raises(CorruptModelError, match=r"not supported; interp reads .*Llama.*Qwen3"):
        load_model(str(tmp_path))


def test_unknown_rope_type_is_refused(tmp_path):
    build_twin("llama", tmp_path)
    _edit_config(tmp_path, rope_parameters={"rope_type": "mystery", "rope_theta": 1e4, "factor": 2.0})
    with pytest.raises(CorruptModelError, match="RoPE type 'mystery' is not supported"):
        load_model(str(tmp_path))


def test_an_unimplemented_config_field_is_refused_by_name(tmp_path):
    build_twin("gemma3", tmp_path)
    _edit_config(tmp_path, use_bidirectional_attention=True)
    with pytest.raises(CorruptModelError, match="use_bidirectional_attention"):
        load_model(str(tmp_path))


def test_a_tensor_nobody_reads_stops_the_load(tmp_path):
    from safetensors.torch import load_file, save_file

    build_twin("qwen2", tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    state["model.layers.0.self_attn.o_proj.bias"] = torch.zeros(64)  # Qwen2 has no output bias
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CorruptModelError, match="would not use, first model.layers.0.self_attn.o_proj.bias"):
        load_model(str(tmp_path))


def test_a_missing_tensor_stops_the_load(tmp_path):
    from safetensors.torch import load_file, save_file

    build_twin("olmo2", tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["model.layers.2.self_attn.k_norm.weight"]
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CorruptModelError, match="lacks the tensor model.layers.2.self_attn.k_norm.weight"):
        load_model(str(tmp_path))


def test_sharded_checkpoint_loads_the_same(tmp_path):
    hf = build_twin("qwen3", tmp_path / "whole")
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert len(list((tmp_path / "sharded").glob("*.safetensors"))) > 1
    tokens = prompt(batch=1)
    with torch.no_grad():
        torch.testing.assert_close(load_model(str(tmp_path / "sharded"))(tokens),
                                   load_model(str(tmp_path / "whole"))(tokens), atol=0, rtol=0)


def test_dynamic_rope_reads_past_max_position_embeddings(tmp_path):
    """Dynamic NTK scaling exists to run longer than max_position_embeddings (64 here): transformers does."""
    hf = build_twin("llama-dynamic-rope", tmp_path)
    ours = load_model(str(tmp_path))
    tokens = prompt(batch=1, length=90)
    with torch.no_grad():
        torch.testing.assert_close(ours(tokens), hf(tokens).logits, atol=1e-4, rtol=1e-4)
    assert PROMPT_LEN < 64 < 90
