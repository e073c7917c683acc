"""The edit-eval intervals resample whole neighbourhood groups: EditEvalResult.means() and the benchmark tables
(benchmarks/rome_eval.py) give wider intervals when the facts of a group are duplicates of each other than when
the same scores come from independent facts, and the groups come from the facts' shared prompts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from interp.analysis.facts.records import FactRecord
from interp.analysis.rome.params import METRICS, EditEvalParams
from interp.analysis.rome.result import EditEvalResult
from interp.analysis.rome.run import label_groups

ROOT = Path(__file__).resolve().parents[3]


def scores(n_groups: int = 8, size: int = 4, seed: int = 0) -> pd.DataFrame:
    """n_groups x size facts; inside a group every fact has the same scores (duplicates)."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        one = {m: float(rng.random()) for m in METRICS}
        for _ in range(size):
            rows.append({"case_id": len(rows), **one, **{f"{m}_before": 0.5 for m in METRICS},
                         "neighborhood_flipped": 0.0, "fluency": 5.0, "fluency_before": 5.0, "layers": "2",
                         "group": g})
    return pd.DataFrame(rows)


def result(per_fact: pd.DataFrame) -> EditEvalResult:
    return EditEvalResult("tiny", EditEvalParams(), 0.0, per_fact, 0.0, [])


def width(means: dict, metric: str) -> float:
    lo, hi = means[metric]["ci95"]
    return hi - lo


def test_means_widen_when_a_groups_facts_are_duplicates():
    dup = scores()
    independent = dup.assign(group=range(len(dup)))  # the same 32 scores, each fact its own group
    a, b = result(dup).means(), result(independent).means()
    for m in METRICS:
        assert a[m]["mean"] == b[m]["mean"]
        # 8 independent groups of 4 copies: the effective n is 8, not 32, so about twice as wide
        assert width(a, m) > 1.5 * width(b, m), m
    assert result(dup).to_json()["n_groups"] == 8
    # a result written before the group column: facts resampled one by one (the independent interval)
    old = result(dup.drop(columns="group")).means()
    assert old["efficacy"]["ci95"] == b["efficacy"]["ci95"]
    assert "8 neighbourhood groups of the 32 facts" in result(dup).summary_markdown()


def test_benchmark_table_intervals_are_clustered_and_paired():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import rome_eval

    dup = scores()
    independent = dup.assign(group=range(len(dup)))
    for m in METRICS:
        lo_d, hi_d = rome_eval.metric_interval(dup, m)
        lo_i, hi_i = rome_eval.metric_interval(independent, m)
        assert hi_d - lo_d > 1.5 * (hi_i - lo_i)
    s_dup, s_ind = rome_eval.score_draws(dup), rome_eval.score_draws(independent)
    assert np.ptp(np.percentile(s_dup, [2.5, 97.5])) > 1.5 * np.ptp(np.percentile(s_ind, [2.5, 97.5]))
    # two rows of the same facts draw the same groups: a row minus itself is exactly zero in every resample
    assert np.all(rome_eval.score_draws(dup) - rome_eval.score_draws(dup.copy()) == 0)


def test_benchmark_groups_of_kept_rows_come_from_the_fact_file():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import rome_eval

    from interp.analysis.facts.records import load_facts
    from interp.analysis.facts.splits import neighbourhood_groups

    facts = load_facts(ROOT / "experiments" / "data" / "facts.json")[:12]
    kept = pd.DataFrame({"case_id": [f.case_id for f in facts]})  # a row kept before the group column
    assert rome_eval.fact_groups(kept) == neighbourhood_groups(facts)
    assert len(set(rome_eval.fact_groups(kept))) < 12  # the first facts share neighbours (Paris landmarks)


def fact(case_id: int, subject: str, true: str, neighbours: tuple[str, ...], relation: str = "P1") -> FactRecord:
    return FactRecord(case_id, "The {} is in", subject, true, "Rome", relation,
                      paraphrase_prompts=(f"Say where {subject} is:",), neighborhood_prompts=neighbours)


def test_edit_eval_rows_get_their_facts_neighbourhood_groups():
    records = [fact(1, "Louvre", "Paris", ("The Eiffel Tower is in",)),
               fact(2, "Eiffel Tower", "Paris", ("The Louvre is in",)),  # shares prompts with fact 1
               fact(3, "Colosseum", "Rome city", ("The Pantheon is in",), relation="P2")]
    rows = label_groups([{"case_id": r.case_id} for r in records], records)
    assert [r["group"] for r in rows] == [0, 0, 1]


def test_findings_state_n_groups_and_the_cluster_interval():
    dup = scores()
    means = result(dup).means()
    texts = {f.key: f.text for f in result(dup).findings()}
    for m in METRICS:
        lo, hi = means[m]["ci95"]
        assert f"over 32 facts in 8 neighbourhood groups: {means[m]['mean']:.2f} [{lo:.2f}, {hi:.2f}]" in texts[m]
        assert "95% cluster-bootstrap interval" in texts[m]
    old = {f.key: f.text for f in result(dup.drop(columns="group")).findings()}
    assert "over 32 facts:" in old["efficacy"] and "95% bootstrap interval" in old["efficacy"]
