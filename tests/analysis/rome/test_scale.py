"""Editing at scale on a tiny model: many sequential edits undone bit for bit, one saved file for the whole
sequence, the rows `interp edit-scale` promises, the update-norm rail and the collapse rail, and the
commands' options round-tripping through `reproduce()`."""

from __future__ import annotations

import shlex

import pytest
import torch

from interp.analysis.facts.records import FactRecord
from interp.analysis.rome import MEMITParams, ROMEParams, StatsParams
from interp.analysis.rome.alphaedit import AlphaEditParams
from interp.analysis.rome.edit import Edit, LayerDelta, weight_hash
from interp.analysis.rome.finetune import FTParams
from interp.analysis.rome.key import EditRequest
from interp.analysis.rome.scale import EditFactsParams, EditScaleParams, run_edit_facts, run_edit_scale
from interp.analysis.rome.scale_result import ROW_COLUMNS, EditFactsResult, EditScaleResult
from interp.analysis.rome.session import EditorParams, EditSession, OutlierStop
from interp.errors import EditError
from tests.tiny import CHARS, char_tokenizer, tiny_model

SUBJECTS = ("Eiffel Tower", "Big Ben", "Colosseum", "Louvre", "Prado", "Kremlin", "Acropolis", "Alhambra",
            "Uffizi", "Parthenon")
FACTS = [FactRecord(i, "The {} is in", s, "Paris", "Rome", "P1", paraphrase_prompts=(f"{s} is in",),
                    neighborhood_prompts=("The Louvre is in",), generation_prompts=(f"The {s} is",))
         for i, s in enumerate(SUBJECTS)]
ROME = ROMEParams(layer=1, steps=5, context_lengths=((2, 2),), stats=StatsParams(n_tokens=400, sample_len=16))
MEMIT = MEMITParams(layers=(1, 2), rome=ROME)
EDITORS = EditorParams(rome=ROME, memit=MEMIT, alphaedit=AlphaEditParams(memit=MEMIT, relative_threshold=0.03),
                       ft=FTParams(layer=1, steps=3))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))


def _model():
    m = tiny_model("llama", d_vocab=len(CHARS) + 1, n_ctx=1024, n_layers=4)
    m.tokenizer = char_tokenizer()
    return m


@pytest.mark.parametrize("method", ["rome", "memit", "alphaedit", "ft", "ft-l"])
def test_undo_after_many_sequential_edits_is_bit_exact(method):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    session = EditSession(model, method, EDITORS)
    for batch in session.batches([EditRequest.from_fact(f) for f in FACTS[:6]], batch_size=2):
        session.step(batch)
    assert session.n_edits == 6 and len(session.steps) == (3 if method in ("memit", "alphaedit") else 6)
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert session.restore()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_edit_facts_saves_one_file_for_the_sequence_and_undoes_it(tmp_path):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = EditFactsParams(facts="-", method="rome", limit=5, save=str(tmp_path / "five.edit"), check_every=2,
                             editors=EDITORS)
    result = run_edit_facts(model, params, records=FACTS)
    assert isinstance(result, EditFactsResult) and result.undo_exact is None and len(result.facts) == 5
    edited = model.blocks[1].mlp.w_out.detach().clone()
    assert not torch.equal(edited, before["blocks.1.mlp.w_out"])  # kept applied without --undo
    fresh = _model()
    loaded = Edit.load(result.saved, fresh)  # made for the unedited weights
    assert len(loaded.requests) == 5 and loaded.method == "rome"
    loaded.apply(fresh)
    torch.testing.assert_close(fresh.blocks[1].mlp.w_out, edited, rtol=0, atol=1e-5)
    undone = run_edit_facts(_model(), EditFactsParams(facts="-", method="memit", batch_size=3, undo=True,
                                                      editors=EDITORS), records=FACTS)
    assert undone.undo_exact is True and len(undone.steps) == 4
    assert {"per_fact", "steps"} <= set(undone.tables()) and "undo" in undone.render()


def test_edit_scale_rows_have_the_promised_columns():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = EditScaleParams(methods=("rome", "memit", "ft-l"), checkpoints=(1, 3, 6), batch_size=3,
                             known_only=False, n_control=2, gen_tokens=4, n_gen_prompts=2, editors=EDITORS)
    result = run_edit_scale(model, params, records=FACTS)
    assert isinstance(result, EditScaleResult)
    rows = result.rows
    assert tuple(rows.columns) == ROW_COLUMNS
    assert rows["method"].tolist() == ["none", *["rome"] * 3, *["memit"] * 3, *["ft-l"] * 3]
    assert rows["n_edits"].tolist() == [0, 1, 3, 6, 1, 3, 6, 1, 3, 6]  # MEMIT's batches cut at the checkpoints
    edited = rows[rows["method"] != "none"]
    measured = ["efficacy", "paraphrase", "neighborhood", "earlier_held", "perplexity", "fluency"]
    assert edited[measured].notna().all().all()
    assert (edited[["dw_norm", "seconds_per_edit", "peak_memory_mb"]] > 0).all().all()
    assert rows.loc[0, "perplexity_ratio"] == 1.0 and rows.loc[0, "perplexity"] == result.base_perplexity
    assert set(result.norms["method"]) == {"rome", "memit", "ft-l"} and set(result.norms["layer"]) == {1, 2}
    assert len(result.steps) == 6 + 3 + 6 and not result.notes  # MEMIT: batches of 1, 2, 3
    assert result.restored == {"rome": True, "memit": True, "ft-l": True}
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def _broken(scale: float):
    """A session whose every step is a random update of Frobenius norm `scale` (a deliberately broken editor)."""
    counter = iter(range(10_000))

    def compute(self, requests):
        w = self.model.blocks[1].mlp.w_out
        g = torch.Generator().manual_seed(next(counter))
        left = torch.randn(w.shape[0], 1, generator=g)
        right = torch.randn(1, w.shape[1], generator=g)
        size = scale(len(self.steps)) if callable(scale) else scale
        left = left * size / float((left @ right).norm())
        return Edit(self.model.cfg.name, "rome", [LayerDelta(1, left, right, weight_hash(w))], list(requests))

    return compute


def _confident(tmp_path):
    """A tiny model made confident (final norm x10) and a held-out text it predicts well (its own greedy
    continuation, perplexity near 1), so a broken edit can raise the perplexity tenfold, as on a real model."""
    from interp.model.generate import generate

    model = _model()
    with torch.no_grad():
        model.ln_final.w.mul_(10)
    path = tmp_path / "heldout.txt"
    path.write_text("The" + generate(model, "The", max_new_tokens=200))
    return model, str(path)


def test_collapse_is_detected_reported_and_never_kept(monkeypatch, tmp_path):
    monkeypatch.setattr(EditSession, "compute", _broken(100.0))
    model, heldout = _confident(tmp_path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = EditScaleParams(methods=("rome",), checkpoints=(1, 3, 6), known_only=False, n_control=2,
                             n_gen_prompts=0, heldout=heldout, editors=EDITORS)
    result = run_edit_scale(model, params, records=FACTS)
    last = result.rows.iloc[-1]
    assert bool(last["collapsed"]) and last["n_edits"] == 1 and last["perplexity_ratio"] > 10
    assert len(result.rows) == 2 and "collapsed after 1 edits" in result.notes[0]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(EditError, match="collapsed after 1 edits.*undone"):
        run_edit_facts(model, EditFactsParams(facts="-", method="rome", check_every=1, heldout=heldout,
                                              save=str(tmp_path / "never.edit"), editors=EDITORS), records=FACTS)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not (tmp_path / "never.edit").exists()
    # a small update on the same model is no collapse
    monkeypatch.setattr(EditSession, "compute", _broken(0.01))
    calm = run_edit_scale(model, params, records=FACTS)
    assert not calm.rows["collapsed"].any() and calm.rows["n_edits"].tolist() == [0, 1, 3, 6]


def test_an_outlier_update_is_flagged_before_it_is_applied(monkeypatch):
    monkeypatch.setattr(EditSession, "compute", _broken(lambda i: 100.0 if i == 6 else 0.01 * (1 + 0.1 * i)))
    model = _model()
    session = EditSession(model, "rome", EditorParams(rome=ROME))
    requests = [EditRequest.from_fact(f) for f in FACTS]
    steps = [session.step([r]) for r in requests[:8]]
    assert [s.flagged for s in steps] == [False] * 6 + [True, False]
    stopping = EditSession(model, "rome", EditorParams(rome=ROME, on_outlier="stop"))
    for r in requests[:6]:
        stopping.step([r])
    w = model.blocks[1].mlp.w_out.detach().clone()
    with pytest.raises(OutlierStop, match="not applied"):
        stopping.step([requests[6]])
    assert torch.equal(model.blocks[1].mlp.w_out, w)  # refused before it touched the weights


def _parse(args):
    from cli.main import cli

    command = cli.get_command(None, args[1])
    return command.params_from_options(**command.make_context(args[1], args[2:]).params)


def test_edit_facts_options_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = tmp_path / "t.txt"
    text.write_text("Some held-out text.\n")
    args = ["interp", "edit", "--facts", "facts.json", "--method", "alphaedit", "--batch-size", "7", "--limit", "9",
            "--save", str(tmp_path / "new.edit"), "--undo", "--heldout", str(text), "--check-every", "3", "--seed", "2",
            "--layer", "1", "--layers", "1,2", "--stats-tokens", "40", "--null-relative", "0.01", "--alpha-l2", "3",
            "--ft-eps", "0.002", "--collapse-factor", "4", "--on-outlier", "stop"]
    params = _parse(args)
    assert isinstance(params, EditFactsParams) and params.method == "alphaedit" and params.batch_size == 7
    assert params.editors.alphaedit.memit.layers == (1, 2) and params.editors.ft.norm_constraint == 0.002
    command = EditFactsResult.command_for("smollm2-135m", params)
    assert _parse(shlex.split(command)) == params
    with pytest.raises(Exception, match="leave out --prompt"):
        _parse(["interp", "edit", "--facts", "f.json", "--prompt", "The {} is"])


def test_a_last_checkpoint_beyond_the_facts_measures_all_of_them():
    params = EditScaleParams(methods=("ft-l",), checkpoints=(1, 3, 1000), known_only=False, n_control=2,
                             n_gen_prompts=0, editors=EDITORS)
    result = run_edit_scale(_model(), params, records=FACTS)
    assert result.rows["n_edits"].tolist() == [0, 1, 3, 8] and result.n_edit_facts == 8 and result.n_control == 2


def test_batches_are_cut_at_the_checkpoints():
    from interp.analysis.rome.scale import planned_batches

    sizes = [len(b) for b in planned_batches(list(range(1000)), [1, 10, 100, 1000], 100, "memit")]
    assert sizes == [1, 9, 90] + [100] * 9
    assert [len(b) for b in planned_batches(list(range(5)), [2, 5], 100, "rome")] == [1] * 5


def test_edit_order_is_a_seeded_shuffle_with_disjoint_controls():
    from interp.analysis.rome.scale import split_facts

    params = EditScaleParams(checkpoints=(1, 5), known_only=False, n_control=3)
    model = _model()
    edited, controls = split_facts(model, params, FACTS)
    assert len(edited) == 5 and len(controls) == 3
    assert not {f.case_id for f in edited} & {f.case_id for f in controls}
    assert [f.case_id for f in edited] == [f.case_id for f in split_facts(model, params, FACTS)[0]]
    assert [f.case_id for f in edited + controls] != sorted(f.case_id for f in edited + controls)  # mixed


def test_runs_of_one_editor_each_merge_into_one_result(tmp_path):
    from interp.analysis.rome.scale_result import merge

    folders = []
    for method in ("ft-l", "ft"):
        params = EditScaleParams(methods=(method,), checkpoints=(1, 2), known_only=False, n_control=2,
                                 n_gen_prompts=0, editors=EDITORS)
        result = run_edit_scale(_model(), params, records=FACTS)
        result.command = f"interp edit-scale --methods {method}"
        result.write(tmp_path / method)
        (tmp_path / method / "code_commit").write_text(f"{method}-commit\n")
        folders.append(tmp_path / method)
    merged = merge(folders, tmp_path / "both")
    assert merged.rows["code_commit"].tolist() == ["ft-l-commit"] * 3 + ["ft-commit"] * 2  # "none" from the first
    assert set(merged.steps["code_commit"]) == {"ft-l-commit", "ft-commit"}
    assert merged.rows["method"].tolist() == ["none", "ft-l", "ft-l", "ft", "ft"]
    assert merged.params.methods == ("ft-l", "ft") and merged.restored == {"ft-l": True, "ft": True}
    assert (tmp_path / "both" / "figures" / "edit_scale.png").exists()
    assert "--methods ft-l ; interp edit-scale --methods ft" in merged.findings()[0].command


def test_a_time_budget_stops_an_editor_after_a_checkpoint_and_says_so():
    from interp.analysis.rome.scale import _past_budget

    assert _past_budget(None, 1e9, 0.0, 0.0, 1, 10) is None
    # 10 edits in 60 s of editing and 30 s of measuring: 90 more edits at 6 s and one more measuring of 30 s
    assert _past_budget(11, 90.0, 30.0, 30.0, 10, 100) is None  # 660 s: just fits 11 minutes
    assert "100 edits would take about 11 minutes at 6.0 s per edit" in _past_budget(10.9, 90.0, 30.0, 30.0, 10, 100)
    params = EditScaleParams(methods=("ft-l",), checkpoints=(1, 3, 6), known_only=False, n_control=2,
                             n_gen_prompts=0, max_minutes=1e-9, editors=EDITORS)
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = run_edit_scale(model, params, records=FACTS)
    assert result.rows["n_edits"].tolist() == [0, 1] and "stopped after 1 edits: 3 edits would" in result.notes[0]
    assert result.restored == {"ft-l": True} and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_edit_scale_options_round_trip():
    from interp.analysis.rome.scale_result import EditScaleResult as Result

    args = ["interp", "edit-scale", "--facts", "f.json", "--methods", "rome,ft-l", "--checkpoints", "1,10,100",
            "--controls", "38", "--check-every", "10", "--max-minutes", "25.5", "--seed", "3"]
    params = _parse(args)
    assert params.max_minutes == 25.5 and params.n_control == 38 and params.check_every == 10
    assert _parse(shlex.split(Result.command_for("smollm2-135m", params))) == params
    with pytest.raises(Exception, match="max-minutes must be above 0"):
        _parse(args[:-4] + ["--max-minutes", "0"])
