"""`run_edit_eval` end to end on SmolLM2: sequential ROME and one MEMIT batch over two known facts, with an
unknown fact that the known-facts filter must drop, and the model left exactly as it was."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from interp.analysis.facts.records import load_facts
from interp.analysis.rome import EditEvalParams, ROMEParams, run_edit_eval
from interp.analysis.rome.evaluate import known_facts

pytestmark = pytest.mark.slow

KEYS = {"model", "n", "efficacy", "paraphrase", "neighborhood", "fluency", "seconds_per_edit"}


@pytest.fixture(scope="module")
def records():
    facts = {f.subject: f for f in load_facts("experiments/data/facts.json")}
    eiffel, colosseum = facts["Eiffel Tower"], facts["Colosseum"]
    assert (eiffel.subject, colosseum.subject) == ("Eiffel Tower", "Colosseum")
    wrong = dataclasses.replace(eiffel, case_id="wrong", target_true="Tokyo", target_new="Berlin")
    return [eiffel, wrong, colosseum]


def test_known_facts_drops_a_fact_whose_true_answer_is_wrong(smollm2, records):
    assert known_facts(smollm2, records) == [True, False, True]


@pytest.mark.parametrize("method", ["rome", "memit"])
def test_edit_eval_edits_both_facts_and_leaves_the_model_unedited(smollm2, records, method):
    weights = {k: v.clone() for k, v in smollm2.state_dict().items()}
    # What is tested is edit-eval's bookkeeping, not an editor, so ROME is ours here: its early stop makes an edit
    # 2.4x faster than the default (the original runs all 20 steps). The default's edit of the same Eiffel fact
    # is tested in test_rome_smollm2.py and, through the lab, in tests/serve.
    params = EditEvalParams(method=method, edits=2, gen_tokens=8, n_gen_prompts=1, rome=ROMEParams.ours())
    result = run_edit_eval(smollm2, params, records=records)
    summary = result.to_json()
    assert KEYS <= summary.keys()
    assert summary["n"] == 2 and summary["skipped_unknown"] == 1
    assert list(result.per_fact["subject"]) == ["Eiffel Tower", "Colosseum"]
    assert summary["before"]["efficacy"] == 0.0  # the model held the true facts
    assert summary["efficacy"] == 1.0  # both rewrites took, edited together
    assert summary["neighborhood"] >= 0.75  # the other Paris and Rome landmarks mostly keep their city
    assert 0 < summary["fluency"] and summary["seconds_per_edit"] > 0
    for k, v in smollm2.state_dict().items():
        assert torch.equal(v, weights[k]), k
