"""Causal tracing: the batched trace equals the one-forward-per-cell reference, the noise is seeded, the
restorations behave as they must, and on SmolLM2 the MLP effect at the last subject token sits early."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from interp.analysis.facts.causal_trace import (
    FactCase,
    _window,
    case_noise,
    embedding_std,
    make_noise,
    prepare_case,
    trace_bruteforce,
    trace_case,
)
from interp.analysis.facts.params import KINDS, TraceParams
from interp.errors import InvalidInputError
from interp.model.transformer import Transformer
from tests.tiny import TINY, tiny_model


def tiny(family: str) -> Transformer:
    return tiny_model(family, std=0.3, n_layers=3)


def tiny_case() -> FactCase:
    tokens = torch.tensor([[3, 5, 7, 9, 11, 13, 2, 40]])  # (1, 8); subject = tokens 2..4
    return FactCase("x {} y", "s", "t", tokens, [str(t) for t in tokens[0].tolist()], 2, 5, answer_id=17)


@pytest.mark.parametrize("family", sorted(TINY))
def test_batched_trace_equals_bruteforce(family):
    model, case = tiny(family), tiny_case()
    params = TraceParams(samples=3, window=2, batch_size=5)  # batch 5 splits the 3 x 6 live rows into chunks
    noise = make_noise(3, 3, model.cfg.d_model, 0.5, seed=1)
    fast = trace_case(model, case, noise, params)
    slow = trace_bruteforce(model, case, noise, params)
    assert abs(fast.p_clean - slow.p_clean) < 1e-6 and abs(fast.p_corrupted - slow.p_corrupted) < 1e-6
    for kind in KINDS:
        assert fast.scores[kind].shape == (8, model.cfg.n_layers)
        np.testing.assert_allclose(fast.scores[kind], slow.scores[kind], atol=1e-6)
    # the corruption matters on this model, so equality is not trivial
    assert np.abs(fast.scores["resid"] - fast.p_corrupted).max() > 1e-4


def test_subset_of_positions_matches_full_trace():
    model, case = tiny("llama"), tiny_case()
    params = TraceParams(samples=2, window=3)
    noise = make_noise(2, 3, model.cfg.d_model, 0.5, seed=0)
    full = trace_case(model, case, noise, params)
    part = trace_case(model, case, noise, params, positions=[4, 2, 7])
    assert part.positions == [2, 4, 7]
    for kind in KINDS:
        np.testing.assert_allclose(part.scores[kind], full.scores[kind][[2, 4, 7]], atol=1e-6)


def test_restorations_that_must_give_known_answers():
    model, case = tiny("gemma3"), tiny_case()
    n = model.cfg.n_layers
    params = TraceParams(samples=2, window=2 * n + 2)  # a window over every layer
    tr = trace_case(model, case, make_noise(2, 3, model.cfg.d_model, 1.0, seed=0), params)
    # before the subject nothing differs yet: every restoration there is the corrupted run
    np.testing.assert_allclose(tr.scores["mlp"][:2], tr.p_corrupted)
    # restoring the final residual at the last token restores the clean output exactly
    assert tr.scores["resid"][-1, n - 1] == pytest.approx(tr.p_clean, abs=1e-6)
    assert tr.p_clean != pytest.approx(tr.p_corrupted, abs=1e-6)


def test_noise_is_reproducible_under_a_seed():
    a, b, c = make_noise(4, 3, 16, 2.0, seed=7), make_noise(4, 3, 16, 2.0, seed=7), make_noise(4, 3, 16, 2.0, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.std().item() == pytest.approx(2.0, rel=0.2)
    model, case = tiny("llama"), tiny_case()
    params = TraceParams(samples=2, window=2)
    one = trace_case(model, case, make_noise(2, 3, 32, 0.5, 3), params)
    two = trace_case(model, case, make_noise(2, 3, 32, 0.5, 3), params)
    for kind in KINDS:
        assert np.array_equal(one.scores[kind], two.scores[kind])


def test_window_is_the_references():
    assert _window(12, 10, 30) == range(7, 17)  # l-5 .. l+4
    assert _window(1, 10, 30) == range(0, 6)
    assert _window(28, 10, 30) == range(23, 30)
    assert _window(4, 1, 30) == range(4, 5)


def test_params_validation():
    with pytest.raises(InvalidInputError, match="samples"):
        TraceParams(samples=0)
    with pytest.raises(InvalidInputError, match="kinds"):
        TraceParams(kinds=("mlp", "heads"))


@pytest.mark.slow
def test_prepare_case_on_real_tokenizers(smollm2, gemma3):
    case = prepare_case(smollm2, "The {} is located in the city of", "Eiffel Tower", "Paris")
    assert "".join(case.str_tokens[case.subject_start:case.subject_end]).strip() == "Eiffel Tower"
    assert smollm2.to_string([case.answer_id]) == " Paris"
    g = prepare_case(gemma3, "The Eiffel Tower is located in the city of", "Eiffel Tower", "Paris")
    assert g.tokens[0, 0].item() == gemma3.cfg.bos_token_id and g.subject_start == 2
    assert "".join(g.str_tokens[g.subject_start:g.subject_end]).strip() == "Eiffel Tower"
    with pytest.raises(InvalidInputError, match="not in the prompt"):
        prepare_case(smollm2, "The tower is tall", "Eiffel Tower")
    with pytest.raises(InvalidInputError, match="target"):
        prepare_case(smollm2, "The {} is tall", "Eiffel Tower", " ")
    assert 0.05 < embedding_std(smollm2) < 0.5


# Facts SmolLM2 answers correctly (greedy first token).
SMOL_FACTS = [
    ("The {} is located in the city of", "Eiffel Tower", "Paris"),
    ("The capital of {} is", "Japan", "Tokyo"),
    ("The mother tongue of {} is", "Vladimir Putin", "Russian"),
    ("{} plays the sport of", "Tiger Woods", "golf"),
    ("The {} is located in the city of", "Colosseum", "Rome"),
]


@pytest.mark.slow
def test_smollm2_mlp_effect_at_last_subject_token_is_early(smollm2):
    """Observed over 6 known facts (2 samples, window 10): the averaged MLP indirect effect at the last subject
    token peaks with the window centred on layer 4 (AIE 0.43, flat over centres 0-5, i.e. MLPs 0-4 carry it),
    drops to 0.1-0.2 by layers 6-11 and to ~0 after layer 20 of 30: early layers, as the paper found
    early-middle layers in GPT-2 XL. Traced here at that one token only, 2 samples, to stay fast."""
    params = TraceParams(samples=2, kinds=("mlp",))
    sigma = embedding_std(smollm2)
    effects = []
    for prompt, subject, target in SMOL_FACTS:
        case = prepare_case(smollm2, prompt, subject, target)
        tr = trace_case(smollm2, case, case_noise(smollm2, case, params, sigma), params,
                        positions=[case.subject_end - 1])
        assert tr.p_clean > tr.p_corrupted  # the corruption removes the fact
        effects.append(tr.effects("mlp")[0])
    aie = np.mean(effects, 0)  # (n_layers,)
    peak = int(aie.argmax())
    assert peak < 15, f"MLP AIE at the last subject token peaks at layer {peak}: {np.round(aie, 3)}"
    assert aie[:15].max() > 2 * max(aie[20:].max(), 0.01)


def test_trace_cli_rejects_bad_input(tmp_path):
    from cli.main import cli

    runner = CliRunner()
    r = runner.invoke(cli, ["trace", "--prompt", "The {} is tall"])
    assert r.exit_code != 0 and "together" in str(r.exception)
    r = runner.invoke(cli, ["trace", "--facts", str(tmp_path / "missing.json")])
    assert r.exit_code != 0 and "does not exist" in str(r.exception)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"case_id": 1}]))
    r = runner.invoke(cli, ["trace", "--facts", str(bad)])
    assert r.exit_code != 0 and "requested_rewrite" in str(r.exception)


@pytest.mark.slow
def test_trace_cli_json(smollm2, tmp_path):
    from cli.main import cli

    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["trace", "--prompt", "The capital of {} is", "--subject", "Japan", "--target", "Tokyo",
                                 "--samples", "1", "--json", "--out", str(out)])
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout[r.stdout.index("{"):])
    assert {"model", "prompt", "subject", "target", "p_clean", "p_corrupted", "peak"} <= set(j)
    assert set(j["peak"]) == {"mlp", "attn", "resid"} and {"layer", "token"} <= set(j["peak"]["mlp"])
    assert ((out / "figures" / "trace_mlp.png").is_file() and (out / "summary.md").is_file()
            and (out / "trace_resid.csv").is_file())
    r = CliRunner().invoke(cli, ["trace", "--out", str(out)])
    assert r.exit_code != 0 and "--force" in str(r.exception)


def test_result_tables_json_figures_and_summary(tmp_path):
    from interp.analysis.facts.result import TraceResult

    model, case = tiny("llama"), tiny_case()
    params = TraceParams(samples=2, window=2)
    full = trace_case(model, case, make_noise(2, 3, 32, 0.5, 0), params)
    keys = sorted({q for qs in case.category_positions().values() for q in qs})
    assert keys == [2, 3, 4, 5, 6, 7]
    part = trace_case(model, case, make_noise(2, 3, 32, 0.5, 1), params, positions=keys)
    result = TraceResult("tiny", params, 0.0, 0.1, full, [full, part])
    avg = result.averaged()
    mlp_last = avg[(avg.kind == "mlp") & (avg.category == "last_subject")].aie.to_numpy()
    expect = (full.effects("mlp")[4] + part.effects("mlp")[keys.index(4)]) / 2
    np.testing.assert_allclose(mlp_last, expect)
    j = result.to_json()
    assert j["peak"]["mlp"]["token"] == case.str_tokens[j["peak"]["mlp"]["position"]]
    assert set(j["averaged"]["effects"]["attn"]) == {"first_subject", "middle_subject", "last_subject",
                                                     "first_subsequent", "further", "last"}
    json.dumps(j)  # plain JSON types only
    paths = result.save_figures(tmp_path)
    assert {p.name for p in paths} == {"trace_resid.png", "trace_mlp.png", "trace_attn.png", "averaged_effects.png"}
    assert "Average over 2 facts" in result.summary_markdown()
    assert set(result.tables()) == {"trace_resid", "trace_mlp", "trace_attn", "averaged_effects", "facts"}


def test_unknown_facts_are_skipped_and_sigma_comes_from_the_fact_set(tmp_path):
    """As the reference: facts whose greedy answer is not the true one are not traced (and are counted), and
    sigma is the embedding std over every subject of the fact set."""
    from interp.analysis.facts.causal_trace import embedding_std, prepare_case
    from interp.analysis.facts.records import FactRecord
    from interp.analysis.facts.run import run_trace
    from tests.model.families_twins import load_twin_with_words

    model = load_twin_with_words("llama", tmp_path / "twin")  # a word-level tokenizer: one token per answer
    prompt = "the {} is located in the city of"
    known = prepare_case(model, prompt, "eiffel tower").target  # the model's own greedy answer
    other = next(w for w in ("paris", "rome", "london") if w != known)
    facts = (FactRecord(1, prompt, "eiffel tower", known, "x"), FactRecord(2, prompt, "eiffel tower", other, "x"),
             FactRecord(3, prompt, "louvre museum", other, "x"))
    params = TraceParams(prompt=prompt, subject="louvre museum", samples=1, window=1, facts=facts[:2])
    result = run_trace(model, params)
    assert [f.case.case_id for f in result.facts] == [1] and result.skipped == [2]
    assert result.sigma == embedding_std(model, ["eiffel tower"] * 2) != embedding_std(model)
    assert result.to_json()["averaged"]["n_skipped"] == 1
    assert run_trace(model, TraceParams(prompt=prompt, subject="eiffel tower", samples=1, window=1,
                                        facts=facts)).sigma == embedding_std(model, ["eiffel tower"] * 2
                                                                             + ["louvre museum"])
    everything = run_trace(model, TraceParams(prompt=prompt, subject="eiffel tower", samples=1, window=1,
                                              facts=facts[:2], known_only=False))
    assert len(everything.facts) == 2 and everything.skipped == []


def test_a_sample_traces_the_drawn_facts_with_sigma_from_all_and_peaks_carry_intervals(tmp_path):
    """--sample N traces N facts drawn at random (seeded) in file order, known_only still applies, sigma stays
    the std over every subject of the set, and each averaged peak carries the bootstrap interval of its
    per-fact effects."""
    from interp.analysis.facts.causal_trace import embedding_std
    from interp.analysis.facts.records import FactRecord, draw
    from interp.analysis.facts.run import run_trace
    from interp.analysis.recall.stats import bootstrap_mean
    from tests.model.families_twins import load_twin_with_words

    model = load_twin_with_words("llama", tmp_path / "twin")
    prompt = "the {} is located in the city of"
    subjects = ["eiffel tower", "louvre museum", "michael jordan", "france", "italy", "berlin"]
    facts = tuple(FactRecord(i, prompt, s, prepare_case(model, prompt, s).target, "x") for i, s in enumerate(subjects))
    drawn = draw(facts, 3, seed=5)
    assert [f.case_id for f in drawn] == sorted(f.case_id for f in drawn) and len(drawn) == 3
    assert [f.case_id for f in draw(facts, 3, seed=6)] != [f.case_id for f in drawn]
    assert draw(facts, None, seed=5) == draw(facts, 6, seed=5) == list(facts)
    # the single prompt ("rome") is none of the facts; every fact asks for the model's own answer (none skipped)
    params = TraceParams(prompt=prompt, subject="rome", samples=2, window=1, facts=facts, sample=3, seed=5)
    result = run_trace(model, params)
    assert [f.case.case_id for f in result.facts] == [d.case_id for d in drawn] and result.skipped == []
    assert result.sigma == embedding_std(model, subjects) != embedding_std(model, [d.subject for d in drawn])
    j = result.to_json()["averaged"]
    assert (j["n_set"], j["sample"], j["n_facts"] + j["n_skipped"]) == (6, 3, 3)
    mlp = j["peak"]["mlp"]
    per_fact = [f.category_effects("mlp")[mlp["category"]][mlp["layer"]] for f in result.facts]
    assert mlp["ci"] == list(bootstrap_mean(per_fact, seed=5)) and mlp["n_facts"] == len(result.facts)
    assert "3 facts drawn at random (seed 5) from the set's 6" in result.summary_markdown()
    with pytest.raises(InvalidInputError):
        TraceParams(sample=0)


def test_trace_cli_sample_needs_facts():
    from cli.main import cli

    r = CliRunner().invoke(cli, ["trace", "--sample", "3"])
    assert r.exit_code != 0 and "--sample needs --facts" in str(r.exception)
