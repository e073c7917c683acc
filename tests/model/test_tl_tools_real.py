"""TransformerLens' model-agnostic tools run unchanged on interp's SmolLM2 and give the numbers they give on a
TransformerBridge of the same weights (`transformers` reading the same GGUF file), and TL's patching equals
interp's own. Like with like: interp loads the checkpoint's weights and the bridge is left unprocessed (no
`enable_compatibility_mode()`); the same token ids go into both (SmolLM2's tokenizer adds no BOS)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from transformer_lens import SVDInterpreter, patching
from transformer_lens.head_detector import detect_head

from interp.patching.activation import activation_patch
from interp.patching.metrics import logit_diff

pytestmark = pytest.mark.slow

CLEAN = "When John and Mary went to the store, John gave a drink to"
CORRUPT = "When John and Mary went to the store, Mary gave a drink to"
ATOL = 2e-3  # logit differences of two fp32 implementations of the same model (largest |logit| ~ 20)


@pytest.fixture(scope="module")
def setup(smollm2, smollm2_reference):
    _, tokenizer, bridge = smollm2_reference
    ids = [torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]]) for text in (CLEAN, CORRUPT)]
    assert ids[0].shape == ids[1].shape
    mary, john = (tokenizer(f" {name}", add_special_tokens=False)["input_ids"][0] for name in ("Mary", "John"))
    return smollm2.eval(), bridge, ids[0], ids[1], mary, john


def _metric(answer: int, wrong: int):
    return lambda logits: logits[0, -1, answer] - logits[0, -1, wrong]


def _tl_patch(model, fn, clean, corrupted, metric, cells: list[tuple[int, ...]], axes: list[str]):
    """TL's patching function on the chosen cells only (TL's index_df), as a flat tensor."""
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(clean)
        index = pd.DataFrame(cells, columns=axes)
        return fn(model, corrupted, clean_cache, metric, index_axis_names=None, index_df=index).float()


def _diff_pos(clean, corrupted) -> int:
    return int((clean[0] != corrupted[0]).nonzero()[0])


def test_tl_patching_resid_pre_matches_the_bridge_and_interp(setup):
    ours, bridge, clean, corrupted, mary, john = setup
    metric, layers, n_pos = _metric(mary, john), [0, 10, 20, 29], clean.shape[1]
    cells = [(layer, pos) for layer in layers for pos in range(n_pos)]
    got = _tl_patch(ours, patching.get_act_patch_resid_pre, clean, corrupted, metric, cells, ["layer", "pos"])
    want = _tl_patch(bridge, patching.get_act_patch_resid_pre, clean, corrupted, metric, cells, ["layer", "pos"])
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
    mine = activation_patch(ours, clean, corrupted, logit_diff(mary, john), kind="resid", layers=layers)
    torch.testing.assert_close(got, mine.scores[..., 0].flatten(), atol=1e-4, rtol=0)
    # the grid has signal: at layer 0 only the position where the prompts differ carries the clean answer
    grid = got.view(len(layers), n_pos)
    assert grid[0, _diff_pos(clean, corrupted)] - grid[0, -1] > 1


def test_tl_patching_heads_all_positions_and_gqa_keys(setup):
    ours, bridge, clean, corrupted, mary, john = setup
    metric, layers = _metric(mary, john), [0, 15, 29]
    cells = [(layer, head) for layer in layers for head in range(ours.cfg.n_heads)]
    fn = patching.get_act_patch_attn_head_out_all_pos
    got = _tl_patch(ours, fn, clean, corrupted, metric, cells, ["layer", "head"])
    want = _tl_patch(bridge, fn, clean, corrupted, metric, cells, ["layer", "head"])
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
    mine = activation_patch(ours, clean, corrupted, logit_diff(mary, john), kind="heads", layers=layers)
    torch.testing.assert_close(got, mine.scores[..., 0].flatten(), atol=1e-4, rtol=0)
    # keys: one per key/value head (cfg.n_key_value_heads = 3), as TL's patching sizes them
    assert ours.cfg.n_key_value_heads == bridge.cfg.n_key_value_heads == 3
    cells = [(layer, head) for layer in layers for head in range(3)]
    fn = patching.get_act_patch_attn_head_k_all_pos
    got = _tl_patch(ours, fn, clean, corrupted, metric, cells, ["layer", "head"])
    want = _tl_patch(bridge, fn, clean, corrupted, metric, cells, ["layer", "head"])
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_tl_patching_heads_by_position(setup):
    ours, bridge, clean, corrupted, mary, john = setup
    metric, layer, n_heads = _metric(mary, john), 15, ours.cfg.n_heads
    positions = [_diff_pos(clean, corrupted), clean.shape[1] - 1]
    cells = [(layer, pos, head) for pos in positions for head in range(n_heads)]
    fn = patching.get_act_patch_attn_head_out_by_pos
    got = _tl_patch(ours, fn, clean, corrupted, metric, cells, ["layer", "pos", "head"])
    want = _tl_patch(bridge, fn, clean, corrupted, metric, cells, ["layer", "pos", "head"])
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
    mine = activation_patch(ours, clean, corrupted, logit_diff(mary, john), kind="heads_pos", layers=[layer])
    torch.testing.assert_close(got, mine.scores[0, positions, :, 0].flatten(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("pattern", ["previous_token_head", "duplicate_token_head", "induction_head"])
def test_detect_head_matches_the_bridge(setup, pattern):
    ours, bridge, *_ = setup
    text = "The cat sat on the mat because the cat was tired. The cat sat on the mat because the cat was tired."
    bridge.cfg.default_prepend_bos = False  # interp follows SmolLM2's tokenizer (no BOS); the bridge is told to
    try:
        with torch.no_grad():
            got = detect_head(ours, text, pattern, exclude_bos=False)
            want = detect_head(bridge, text, pattern, exclude_bos=False)
    finally:
        bridge.cfg.default_prepend_bos = True
    assert got.shape == (ours.cfg.n_layers, ours.cfg.n_heads)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    assert got.max() > 0.3  # some head does the job


@pytest.mark.parametrize(("kind", "layer", "head"), [("OV", 3, 7), ("OV", 29, 0), ("w_in", 5, None),
                                                       ("w_out", 12, None)])
def test_svd_interpreter_matches_the_bridge(setup, kind, layer, head):
    ours, bridge, *_ = setup
    got = SVDInterpreter(ours).get_singular_vectors(kind, layer_index=layer, head_index=head, num_vectors=4)
    want = SVDInterpreter(bridge).get_singular_vectors(kind, layer_index=layer, head_index=head, num_vectors=4)
    assert got.shape == (ours.cfg.d_vocab, 1, 4)
    # singular vectors are defined up to sign: compare each column up to its sign
    sign = torch.sign((got * want).sum(0, keepdim=True))
    torch.testing.assert_close(got * sign, want, atol=1e-4, rtol=1e-3)
