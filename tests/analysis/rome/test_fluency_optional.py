"""`--gen-prompts 0` skips the fluency generations: fluency is reported as not measured, the scores stay."""

from __future__ import annotations

import math

import pytest

from tests.sweep.tiny_char import FACTS, tiny_char_model


@pytest.fixture(scope="module")
def results():
    from interp.analysis.rome import EditEvalParams, ROMEParams, StatsParams, run_edit_eval

    rome = ROMEParams(layer=1, steps=2, context_lengths=((2, 2),), stats=StatsParams(n_tokens=40, sample_len=8))
    model = tiny_char_model()
    out = {}
    for n in (0, 1):
        out[n] = run_edit_eval(model, EditEvalParams(known_only=False, rome=rome, gen_tokens=4, n_gen_prompts=n),
                               records=list(FACTS[:2]))
    return out


def test_no_generation_prompts_leaves_fluency_unmeasured(results):
    quiet, measured = results[0].to_json(), results[1].to_json()
    assert math.isnan(quiet["fluency"]) and math.isnan(quiet["before"]["fluency"])
    assert not math.isnan(measured["fluency"]) and measured["fluency"] > 0
    assert "| fluency | not measured | not measured |" in results[0].summary_markdown()
    for metric in ("efficacy", "paraphrase", "neighborhood"):  # generation does not touch the scores
        assert quiet[metric] == measured[metric]
