"""benchmarks/rome_eval.py's `--data` / `--part` option (no model): a tune-part row only ever edits facts of the
tune part and a test-part row only facts of the test part; the test table takes each method's setting from the
tune rows' best S (ties to the earlier, cheaper row); `--part all` keeps the in-sample folder and file."""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import rome_eval  # noqa: E402

N_LAYERS = 30
MODEL = "smollm2-135m"


def split_ids(data: str) -> dict:
    return json.loads((ROOT / "experiments" / "data" / "splits" / rome_eval.DATA[data][1]).read_text())


@pytest.mark.parametrize("data", ["facts", "known_edits"])
def test_parts_hold_their_split_ids_only(data):
    split = split_ids(data)
    tune, test = rome_eval.part_records(data, "tune"), rome_eval.part_records(data, "test")
    assert tune and test
    assert {r.case_id for r in tune} <= set(split["tune"])
    assert {r.case_id for r in test} <= set(split["test"])
    assert len(tune) + len(test) == len(rome_eval.part_records(data, "all"))


def test_in_sample_table_keeps_its_folder_and_file(tmp_path):
    assert rome_eval.part_dir(tmp_path, MODEL, "facts", "all", 50) == tmp_path / MODEL
    assert rome_eval.part_out(MODEL, "facts", "all").name == f"rome-eval-{MODEL}.md"
    test_dir = rome_eval.part_dir(tmp_path, MODEL, "known_edits", "test", 20)
    assert test_dir == tmp_path / MODEL / "known_edits-test-20facts"
    assert rome_eval.part_out(MODEL, "known_edits", "tune").name == f"rome-eval-{MODEL}-known_edits-tune.md"
    with pytest.raises(SystemExit):
        rome_eval.part_records("known_edits", "heldout")


def summary(s: float) -> dict:
    return {"summary": {"efficacy": s, "paraphrase": s, "neighborhood": s}}


def test_choice_is_the_best_s_with_ties_to_the_earlier_row():
    groups = rome_eval.tune_groups(MODEL, N_LAYERS, {})
    assert [r[0] for r in groups["rome-ours"]] == [f"rome-ours-L{i}" for i in (2, 4, 6, 8, 10, 12)]
    results = {r[0]: summary(0.5) for rows in groups.values() for r in rows}
    results["rome-ours-L8"] = summary(0.9)
    results["rome-original-L6-4k"] = results["rome-original-L10-4k"] = summary(0.8)  # a tie: layer 6 wins
    chosen = rome_eval.choose(MODEL, N_LAYERS, results)
    assert chosen["rome-ours"][0] == "rome-ours-L8"
    assert chosen["rome-original-layer"] == 6
    assert "rome-original" not in chosen  # its 16k / 64k rows at layer 6 are not measured yet
    assert chosen["memit-ours"][0] == "memit-ours-1-4"  # all equal: the first window
    results["rome-original-L6-16k"], results["rome-original-L6-64k"] = summary(0.85), summary(0.85)
    chosen = rome_eval.choose(MODEL, N_LAYERS, results)
    assert chosen["rome-original"][0] == "rome-original-L6-16k"
    rows = rome_eval.test_rows(MODEL, N_LAYERS, chosen, n_known=138, n_facts=30)
    assert [r[0] for r in rows] == ["rome-original-L6-16k", "rome-ours-L8", "memit-original-1-4", "memit-ours-1-4",
                                    "memit-ours-1-4-b10", "memit-original-1-4-b10", "memit-ours-1-4-b100",
                                    "memit-original-1-4-b100"]
    changes = dict((r[0], r[2]) for r in rows)
    assert changes["rome-original-L6-16k"]["rome"].stats.n_tokens == 16_000
    assert changes["rome-ours-L8"]["rome"].layer == 8 and changes["rome-ours-L8"]["n_gen_prompts"] == 0
    assert changes["memit-ours-1-4-b100"]["sample"] == 100 and "sample" not in changes["memit-ours-1-4-b10"]
    assert len(rome_eval.test_rows(MODEL, N_LAYERS, chosen, n_known=60, n_facts=30)) == 6  # no batch of 100
    del results["memit-original-5-8"]  # its window is not chosen: its rows are placeholders, not run
    rows = rome_eval.test_rows(MODEL, N_LAYERS, rome_eval.choose(MODEL, N_LAYERS, results), n_known=138, n_facts=30)
    assert [r[0] for r in rows if r[2] is None] == ["memit-original-untuned", "memit-original-untuned-b10",
                                                    "memit-original-untuned-b100"]
    with pytest.raises(SystemExit):
        rome_eval.test_rows(MODEL, N_LAYERS, {}, n_known=138, n_facts=30)


def test_a_parts_rows_never_edit_another_parts_facts(tmp_path, monkeypatch):
    """run_part end to end with the editing stubbed: every row of the tune part gets tune facts only, every row
    of the test part test facts only, and the test rows are the settings the tune rows chose."""
    import interp.analysis.rome.evaluate as evaluate

    seen: dict[str, list] = {}
    score = {"rome-ours-L4": 0.9, "rome-original-L10-4k": 0.8, "memit-ours-5-8": 0.7}

    def fake_run_row(model, records, out_dir, row, changes, n_facts, extra=None):
        seen[f"{out_dir.name}/{row}"] = [r.case_id for r in records]
        drawn = records[:n_facts]
        s = score.get(row, 0.5)
        pd.DataFrame([{"case_id": r.case_id, "group": i, "efficacy": s, "paraphrase": s, "neighborhood": s}
                      for i, r in enumerate(drawn)]).to_csv(out_dir / f"{row}.csv", index=False)
        data = {"row": row, **summary(s), **(extra or {})}
        data["summary"].update(n=len(drawn), ci95={m: [s, s] for m in rome_eval.METRICS}, seconds_per_edit=1.0,
                               before={"neighborhood": 1.0, "fluency": 5.0}, fluency=5.0, neighborhood_flipped=0.0)
        (out_dir / f"{row}.json").write_text(json.dumps(data))
        return data

    monkeypatch.setattr(rome_eval, "run_row", fake_run_row)
    monkeypatch.setattr(evaluate, "known_facts", lambda model, records: [r.case_id % 3 != 0 for r in records])
    split = split_ids("known_edits")
    for part in ("tune", "test"):
        args = Namespace(model=MODEL, data="known_edits", part=part, facts=5, tune_facts=5, rows="", results=tmp_path,
                         out=tmp_path / f"{part}.md")
        out_dir = rome_eval.part_dir(tmp_path, MODEL, "known_edits", part, 5)
        out_dir.mkdir(parents=True)
        rome_eval.run_part(args, object(), rome_eval.part_records("known_edits", part), out_dir, N_LAYERS)
    tune_rows = [k for k in seen if k.startswith("known_edits-tune-5facts/")]
    test_rows = [k for k in seen if k.startswith("known_edits-test-5facts/")]
    assert len(tune_rows) == 6 + 6 + 2 + 3 + 3 and len(test_rows) == 8 + 1  # + the default editor as it ships
    for key, ids in seen.items():
        part = "tune" if key.startswith("known_edits-tune-5facts/") else "test"
        assert ids and set(ids) <= set(split[part]), key
        assert all(i % 3 != 0 for i in ids)  # known facts only
    assert "known_edits-tune-5facts/rome-original-L10-64k" in seen  # the budget rows at the original's best layer
    assert {k.split("/")[1] for k in test_rows} >= {"rome-ours-L4", "rome-original-L10-4k", "memit-ours-5-8-b10"}
    assert "Chosen for rome-ours" in (tmp_path / "tune.md").read_text()
    assert "ROME: ours wins" in (tmp_path / "test.md").read_text()
    # the default ROME editor (the original at the default layer 2, C from 4k tokens) where the tune part chose
    # another setting for the original
    assert "known_edits-test-5facts/rome-original-L2-4k" in test_rows
    assert "the default minus the original at its tuned setting" in (tmp_path / "test.md").read_text()


def test_a_fact_without_neighbours_is_left_out_of_the_intervals():
    """A NaN NS (a fact with no neighbourhood prompts) drops out of the bootstrap means, as out of the row's own
    mean, instead of turning every interval into NaN."""
    rows = [{"case_id": i, "group": i, "efficacy": 1.0, "paraphrase": 0.5 + 0.05 * i,
             "neighborhood": float("nan") if i == 0 else 0.1 * i} for i in range(8)]
    df = pd.DataFrame(rows)
    lo, hi = rome_eval.metric_interval(df, "neighborhood")
    assert 0.1 <= lo < hi <= 0.7
    draws = rome_eval.score_draws(df)
    assert draws.min() > 0 and not pd.isna(draws).any()


@pytest.mark.parametrize("model,n_layers", [("smollm2-135m", 30), ("gemma3-270m", 18)])
def test_the_default_rome_layer_is_the_tune_parts_choice(model, n_layers):
    """The library's default ROME layer is the layer sweep's best S on the facts of facts.json's tune part only
    (the committed per-fact rows re-scored), so the reports' edit-eval, drawn from the test part, is out of
    sample for it; the scores use tune facts only (fewer than the sweep's 50)."""
    from interp.analysis.rome.hparams import default_layer

    scores = rome_eval.tune_part_scores(model, n_layers)
    assert len(scores) >= 8  # the whole sweep was kept
    assert all(0 < n < 50 for _, _, _, n, _ in scores.values())
    best = max(scores, key=lambda layer: (scores[layer][0], -layer))
    assert default_layer(model, n_layers) == best, scores


def test_the_default_memit_windows_are_tune_part_choices():
    """Each model's MEMIT window is the best of the three its tune part of known_edits tried (the committed 20-fact
    rows); Gemma-3's also beats the other window of the in-sample table on facts.json's tune part alone."""
    from interp.analysis.rome.hparams import default_memit_layers

    base = ROOT / "benchmarks" / "results" / "rome-eval"
    for model, n_layers in ((MODEL, N_LAYERS), ("gemma3-270m", 18)):
        tune = rome_eval.kept_rows(rome_eval.part_dir(base, model, "known_edits", "tune", 20))
        chosen = rome_eval.choose(model, n_layers, tune, (4_000, 16_000))
        assert tuple(chosen["memit-ours"][2]["memit"].layers) == default_memit_layers(model, n_layers), model
    rows = {row: changes["memit"].layers for row, _, changes in rome_eval.rows_of("memit", "gemma3-270m", 18)
            if row.endswith("-ours")}
    assert len(rows) == 2
    scores = {row: rome_eval.tune_part_score("gemma3-270m", row)[0] for row in rows}
    assert tuple(rows[max(scores, key=scores.get)]) == default_memit_layers("gemma3-270m", 18)


def test_the_default_editor_gets_its_own_test_row_only_where_the_tune_part_chose_another_setting():
    from interp.analysis.rome import ROMEParams

    (row, label, changes), = rome_eval.default_rows(MODEL, N_LAYERS, {"rome-original": ("rome-original-L2-16k",)})
    assert row == "rome-original-L2-4k" and "default ROME editor" in label
    assert changes["rome"] == ROMEParams(layer=2) == ROMEParams.reference(layer=2)  # the default is the original
    assert rome_eval.default_rows(MODEL, N_LAYERS, {"rome-original": ("rome-original-L2-4k",)}) == []
