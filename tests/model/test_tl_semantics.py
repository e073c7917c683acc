"""TransformerLens' meaning of the model's own API (issue #30, part A): a padded batch gives every row the
logits it gets alone (left or right padding, with or without a mask, in forward, run_with_cache,
run_with_hooks and generate); the mask read off pad ids follows TL's `get_attention_mask`; `to_tokens` pads
on TL's side; W_K / W_V have one slice per query head as TL's GQA circuits; `generate` returns prompt +
continuation; the BOS difference is warned about once and never by the CLI. Checked against
`transformer_lens` itself where it has the function."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from interp.errors import InvalidInputError
from interp.model import hook_names as hn
from interp.model.load import load_model
from interp.model.tokenize import infer_mask
from tests.model.families_twins import TWINS, VOCAB, build_twin, word_tokenizer
from tests.tiny import tiny_char_model

ATOL = 1e-4  # fp32, as the family parity tests; a masked batch runs other kernels than one row alone
PAD = 0  # the twins' pad id (ids 0, 1, 2 are pad, eos, bos)


@pytest.fixture(scope="module", params=sorted(TWINS))
def twin(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    build_twin(request.param, folder)
    model = load_model(str(folder))
    if model.cfg.pad_token_id is None:  # GPT-2 has none: without a pad id, only a mask can say what is padding
        model.cfg = model.cfg.replace(pad_token_id=PAD)
    return model


def _rows(seed: int = 0) -> list[torch.Tensor]:
    """Two prompts of different lengths (no special ids), the longer one past every twin's sliding window.
    With 6 generated tokens they stay within the LongRoPE twins' original context (16): beyond it LongRoPE
    switches tables by the batch's longest sequence (as transformers does), so a short row would be computed
    differently in a batch than alone whatever the padding."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(3, VOCAB, (n,), generator=gen) for n in (10, 6)]


def _pad(rows: list[torch.Tensor], side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, mask) padded with the pad id on `side`; built by hand, so the model remembers nothing."""
    n = max(len(r) for r in rows)
    tokens = torch.full((len(rows), n), PAD, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.bool)
    for i, r in enumerate(rows):
        span = slice(n - len(r), n) if side == "left" else slice(0, len(r))
        tokens[i, span], mask[i, span] = r, True
    return tokens, mask


def _real(batch_out: torch.Tensor, mask: torch.Tensor, i: int) -> torch.Tensor:
    return batch_out[i][mask[i]]  # (real positions, ...)


CASES = [("left", True), ("left", False), ("right", True), ("right", False)]


@torch.no_grad()
def test_padded_batch_gives_each_row_its_own_logits_in_forward_cache_and_hooks(twin):
    rows = _rows()
    alone = [twin(r[None])[0] for r in rows]
    resid = hn.resid_post(twin.cfg.n_layers - 1)
    alone_resid = [twin.run_with_cache(r[None], names_filter=[resid])[1][resid][0] for r in rows]
    seen: list[torch.Tensor] = []
    hook = (hn.resid_pre(1), lambda x, hook: seen.append(x) or x * 1.0)
    for side, with_mask in CASES:
        tokens, mask = _pad(rows, side)
        kw = {"attention_mask": mask} if with_mask else {}
        logits = twin(tokens, **kw)
        cached_logits, cache = twin.run_with_cache(tokens, names_filter=[resid], **kw)
        hooked = twin.run_with_hooks(tokens, fwd_hooks=[hook], **kw)
        for i in range(len(rows)):
            for got in (logits, cached_logits, hooked):
                torch.testing.assert_close(_real(got, mask, i), alone[i], atol=ATOL, rtol=ATOL,
                                           msg=f"{side}, mask={with_mask}, row {i}")
            torch.testing.assert_close(_real(cache[resid], mask, i), alone_resid[i], atol=ATOL, rtol=ATOL)
    assert len(seen) == len(CASES)


@torch.no_grad()
def test_padded_batch_generates_what_each_row_generates_alone(twin):
    rows = _rows(seed=1)
    alone = [twin.generate(r[None], max_new_tokens=6, do_sample=False, stop_at_eos=False)[0] for r in rows]
    for side, with_mask in CASES:
        tokens, mask = _pad(rows, side)
        padding_side = None if with_mask or side == "left" else "right"  # a right-padded tensor must say so
        out = twin.generate(tokens, max_new_tokens=6, do_sample=False, stop_at_eos=False, padding_side=padding_side,
                            attention_mask=mask if with_mask else None)
        assert torch.equal(out[:, :tokens.shape[1]], tokens)  # the prompt as given, then the continuation
        for i, row in enumerate(rows):
            assert out[i, tokens.shape[1]:].tolist() == alone[i][len(row):].tolist(), (side, with_mask, i)


def test_inferred_mask_is_transformer_lens_get_attention_mask():
    from transformer_lens.utilities.tokenize_utils import get_attention_mask

    tokens = torch.tensor([[0, 0, 0, 5, 0, 7], [0, 4, 5, 6, 0, 0], [3, 4, 0, 6, 7, 0]])
    for bos, prepend in ((2, True), (0, True), (0, False)):  # BOS == pad: the last leading pad is the BOS
        model = SimpleNamespace(cfg=SimpleNamespace(pad_token_id=0, bos_token_id=bos, default_prepend_bos=prepend))
        for side in ("left", "right"):
            tok = SimpleNamespace(pad_token_id=0, bos_token_id=bos, padding_side=side)
            theirs = get_attention_mask(tok, tokens, prepend).bool()
            ours = infer_mask(model, tokens, side)
            ours = torch.ones_like(theirs) if ours is None else ours
            assert torch.equal(ours, theirs), (bos, prepend, side)


@torch.no_grad()
def test_to_tokens_pads_on_the_tokenizer_side_and_remembers_its_padding():
    model = tiny_char_model()
    model.cfg = model.cfg.replace(pad_token_id=0)  # the char tokenizer's [UNK]; no BOS
    texts = ["a longer text", "short"]
    assert model.tokenizer.padding_side == "right"
    right = model.to_tokens(texts)
    left = model.to_tokens(texts, padding_side="left")
    assert right[1, -1] == 0 and right[1, 0] != 0 and left[1, 0] == 0 and left[1, -1] != 0
    assert torch.equal(model.to_tokens("short")[0], right[1][right[1] != 0])
    for tokens in (right, left):
        logits = model(tokens)
        for i, text in enumerate(texts):
            alone = model(model.to_tokens(text))[0]
            real = tokens[i] != 0
            torch.testing.assert_close(logits[i][real], alone, atol=ATOL, rtol=ATOL)
    # the string forward pads as to_tokens does (TL: the tokenizer's side), so logits[:, -1] is read the same way
    torch.testing.assert_close(model(texts), model(right))
    long = "x" * (model.cfg.n_ctx + 5)
    assert model.to_tokens(long).shape[1] == model.cfg.n_ctx
    assert model.to_tokens(long, truncate=False).shape[1] == model.cfg.n_ctx + 5


@torch.no_grad()
def test_a_pad_id_that_is_a_real_token_needs_the_remembered_or_given_mask():
    """Leading pad ids are read as padding (TL's rule); a text that really starts with the pad id keeps its
    logits when it comes from to_tokens (remembered) or with its mask, and a trailing pad id is never
    guessed away (it would change that position's logits)."""
    model = tiny_char_model()
    model.cfg = model.cfg.replace(pad_token_id=model.to_single_token("a"))
    tokens = model.to_tokens("abc")
    assert tokens[0, 0] == model.cfg.pad_token_id
    unmasked = model(tokens, attention_mask=torch.ones_like(tokens))
    torch.testing.assert_close(model(tokens), unmasked, atol=0, rtol=0)  # remembered: all real
    assert not torch.allclose(model(tokens.clone()), unmasked)  # a new tensor: "a" read as left padding
    ends = model.to_tokens("bca").clone()
    torch.testing.assert_close(model(ends), model(ends, attention_mask=torch.ones_like(ends)), atol=0, rtol=0)


def _bridge_twin(folder):
    """The llama twin (GQA: 4 query heads, 2 kv heads) as ours and as a TransformerBridge on its weights."""
    from transformers import AutoTokenizer

    from interp.model.reference import bridge_from_hf

    hf = build_twin("llama", folder)
    word_tokenizer().save_pretrained(folder)
    return load_model(str(folder)), bridge_from_hf(hf, AutoTokenizer.from_pretrained(str(folder)))


@torch.no_grad()
def test_w_k_and_w_v_are_per_query_head_as_transformer_lens_circuits(tmp_path):
    ours, bridge = _bridge_twin(tmp_path)
    cfg = ours.cfg
    assert cfg.n_kv_heads < cfg.n_heads
    assert ours.W_K.shape == ours.W_V.shape == (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head)
    # the bridge keeps W_K per kv head (== our _W_K) and repeats it for its QK / OV circuits (== our W_K)
    torch.testing.assert_close(ours._W_K, bridge.W_K, atol=0, rtol=0)
    torch.testing.assert_close(ours._W_V, bridge.W_V, atol=0, rtol=0)
    torch.testing.assert_close(ours.W_K, bridge.QK.B.transpose(-2, -1), atol=0, rtol=0)
    torch.testing.assert_close(ours.W_V, bridge.OV.A, atol=0, rtol=0)
    torch.testing.assert_close(ours.W_Q, bridge.W_Q, atol=0, rtol=0)
    for layer, block in enumerate(ours.blocks):
        assert torch.equal(block.attn.W_K, ours.W_K[layer]) and torch.equal(block.attn._W_V, ours._W_V[layer])
    # what the repeat means: x W_K[h] is the key query head h reads (kv head h // group), as hook_k carries it
    tokens = torch.randint(3, VOCAB, (1, 6), generator=torch.Generator().manual_seed(0))
    _, cache = ours.run_with_cache(tokens, names_filter=[hn.resid_pre(0), hn.attn(0, "k")])
    x = ours.blocks[0].ln1(cache[hn.resid_pre(0)])  # (1, p, d_model): what the projections read
    for h in range(cfg.n_heads):
        torch.testing.assert_close(x @ ours.W_K[0, h], cache[hn.attn(0, "k")][:, :, h // cfg.group_size],
                                   atol=1e-5, rtol=1e-5)


def test_generate_has_transformer_lens_arguments_and_returns_prompt_and_continuation():
    model = tiny_char_model()
    text = "abc"
    out = model.generate(text, max_new_tokens=4, do_sample=False)
    assert isinstance(out, str) and out.startswith(text) and len(out) > len(text)
    tokens = model.to_tokens(text)
    toks = model.generate(tokens, max_new_tokens=4, do_sample=False, stop_at_eos=False, use_past_kv_cache=False,
                          verbose=False)
    assert toks.shape == (1, tokens.shape[1] + 4) and torch.equal(toks[:, :tokens.shape[1]], tokens)
    assert model.to_string(toks[0]) == out
    assert model.generate(tokens, max_new_tokens=4, do_sample=False, return_type="str") == out
    assert torch.equal(model.generate(text, max_new_tokens=4, do_sample=False, return_type="tokens"), toks)
    with pytest.raises(InvalidInputError, match="return_type"):
        model.generate(text, max_new_tokens=2, return_type="text")
    with pytest.raises(InvalidInputError, match="padding_side"):
        model(tokens, padding_side="middle")
    texts = model.generate([text, "a longer prompt"], max_new_tokens=3, do_sample=False)
    assert isinstance(texts, list) and texts[0].startswith(text) and texts[1].startswith("a longer prompt")
    # sampling is on by default (TL's do_sample=True, temperature 1): seeded by torch's generator or by seed
    torch.manual_seed(0)
    a = model.generate(tokens, max_new_tokens=8, stop_at_eos=False)
    torch.manual_seed(0)
    b = model.generate(tokens, max_new_tokens=8, stop_at_eos=False)
    assert torch.equal(a, b)
    seeded = [model.generate(tokens, max_new_tokens=8, seed=5) for _ in range(2)]
    assert torch.equal(*seeded)
    stop = int(toks[0, tokens.shape[1]])  # the first greedy token, made an end-of-sequence id
    stopped = model.generate(tokens, max_new_tokens=4, do_sample=False, eos_token_id=stop)
    assert stopped.shape[1] == tokens.shape[1] + 1


def test_bos_warning_fires_once_per_model_and_not_when_prepend_bos_is_given():
    model = tiny_char_model()
    model.cfg = model.cfg.replace(bos_token_id=1, default_prepend_bos=False)  # a BOS exists but is not used
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.to_tokens("abc", prepend_bos=False)
        model.to_str_tokens("abc", prepend_bos=True)
        model("abc", prepend_bos=False)
        assert caught == []
        model.to_tokens("abc")
        model.to_str_tokens("abc")
        model("abc")
    assert len(caught) == 1 and caught[0].category is UserWarning and "prepend_bos=True" in str(caught[0].message)
    for make in (lambda m: m.to_str_tokens("abc"), lambda m: m("abc")):  # each entry point warns on a fresh model
        fresh = tiny_char_model()
        fresh.cfg = model.cfg
        with pytest.warns(UserWarning, match="prepend_bos=True"):
            make(fresh)
    same_rule = tiny_char_model()
    same_rule.cfg = same_rule.cfg.replace(bos_token_id=1, default_prepend_bos=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same_rule.to_tokens("abc")


# -- the real SmolLM2 against TransformerLens' bridge ------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@torch.no_grad()
def test_smollm2_to_tokens_padded_forward_and_generate_match_the_bridge(smollm2, smollm2_reference):
    bridge = smollm2_reference[2]
    prompts = ["The Eiffel Tower is located in the city of", "Paris is the capital of"]
    ours_tokens = smollm2.to_tokens(prompts, prepend_bos=True)
    theirs_tokens = bridge.to_tokens(prompts)  # TL: BOS, padded on the tokenizer's side (right)
    assert torch.equal(ours_tokens, theirs_tokens)
    one = prompts[0]
    assert torch.equal(smollm2.to_tokens(one, prepend_bos=False), bridge.to_tokens(one, prepend_bos=False))
    ours_logits, theirs_logits = smollm2(ours_tokens), bridge(theirs_tokens)
    real = ours_tokens != smollm2.cfg.pad_token_id
    torch.testing.assert_close(ours_logits[real], theirs_logits[real], atol=1e-3, rtol=1e-3)
    # left padding (made by hand, so nothing is remembered): each row still gets its own logits
    left = smollm2.to_tokens(prompts, prepend_bos=True, padding_side="left").clone()
    for i, p in enumerate(prompts):
        alone = smollm2(smollm2.to_tokens(p, prepend_bos=True))[0]
        torch.testing.assert_close(smollm2(left)[i, -alone.shape[0]:], alone, atol=1e-4, rtol=0)
    # generate: greedy, prompt + continuation, the same tokens and text as the bridge. The bridge runs without
    # its KV cache: with transformers 5.24 its cached path continues "...city of Paris" with "-----------"
    for p in prompts:
        ours = smollm2.generate(p, max_new_tokens=12, do_sample=False, prepend_bos=True)
        assert ours == bridge.generate(p, max_new_tokens=12, do_sample=False, use_past_kv_cache=False)
        toks = smollm2.to_tokens(p, prepend_bos=True)
        assert torch.equal(smollm2.generate(toks, max_new_tokens=12, do_sample=False),
                           bridge.generate(toks, max_new_tokens=12, do_sample=False, use_past_kv_cache=False))


@pytest.mark.slow
def test_cli_never_shows_the_bos_warning():
    runs = [["generate", "The Eiffel Tower is in", "-n", "3"],
            ["inspect", "The Eiffel Tower is located in the city of", "--json"],
            ["patch", "--clean", "When Mary and John went to the store, John gave a drink to",
             "--corrupted", "When Mary and John went to the store, Mary gave a drink to",
             "--answer", " Mary", "--wrong", " John", "--method", "attribution", "--json"]]  # one pass, not 450
    for args in runs:
        proc = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=ROOT,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr
        assert "prepend_bos" not in proc.stderr, proc.stderr
