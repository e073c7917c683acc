"""Every analysis on a tiny random model returns a result that keeps the protocol of
`interp.analysis.result`: plain NaN-free JSON, DataFrame tables, matplotlib Figures made without a backend
switch, findings with text / value / units / command, the shared fields, and working reprs."""

from __future__ import annotations

import dataclasses
import json

import matplotlib
import pandas as pd
import pytest
from matplotlib.figure import Figure

from interp.analysis.result import AnalysisResult, Finding
from interp.jsonio import dumps
from tests.tiny import CHARS, char_tokenizer, tiny_char_model  # noqa: F401 (others import them from here)


@pytest.fixture(scope="module")
def model():
    return tiny_char_model()


def _fact():
    from interp.analysis.facts.records import FactRecord

    return FactRecord(1, "The {} is in", "Eiffel Tower", "Paris", "Rome", "P1",
                      paraphrase_prompts=("Eiffel Tower is in",), neighborhood_prompts=("The Louvre is in",),
                      generation_prompts=("The Eiffel Tower is",))


def _induction(model):
    from interp.analysis.induction import InductionParams, run_induction

    return run_induction(model, InductionParams(batch=2, seq_len=6, top_k=2, seeds=2, text=False, peer=False,
                                                circuit="path", path_receivers=2, path_seq_len=5))


def _recall(model):
    from interp.analysis.recall.params import RecallParams
    from interp.analysis.recall.run import run_lost_in_middle

    return run_lost_in_middle(model, RecallParams(n_items=(2, 3), positions="2", n_examples=2, max_new_tokens=2,
                                                  n_boot=20))


def _trace(model):
    from interp.analysis.facts.params import TraceParams
    from interp.analysis.facts.run import run_trace

    return run_trace(model, TraceParams(prompt="The {} is in", subject="Eiffel Tower", samples=2, window=2,
                                        facts=(_fact(),)))


def _neurons(model):
    from interp.analysis.facts.params import NeuronParams
    from interp.analysis.facts.run import run_neurons

    return run_neurons(model, NeuronParams(prompt="The {} is in", subject="Eiffel Tower", steps=2, random_seeds=1,
                                           paraphrases=("Eiffel Tower is in", "The Eiffel Tower stands in"),
                                           unrelated=(("Water is", "wet"),)))


def _small_rome():
    from interp.analysis.rome import ROMEParams, StatsParams

    return ROMEParams(layer=1, steps=2, context_lengths=((2, 2),), stats=StatsParams(n_tokens=40, sample_len=8))


def _edit_eval(model):
    from interp.analysis.rome import EditEvalParams, run_edit_eval

    params = EditEvalParams(known_only=False, rome=_small_rome(), gen_tokens=3, n_gen_prompts=1)
    return run_edit_eval(model, params, records=[_fact()])


def _edit_scale(model):
    from interp.analysis.rome.scale import EditScaleParams, run_edit_scale
    from interp.analysis.rome.session import EditorParams

    params = EditScaleParams(methods=("ft-l",), checkpoints=(1,), known_only=False, n_control=1, gen_tokens=3,
                             n_gen_prompts=1, editors=EditorParams(rome=_small_rome()))
    return run_edit_scale(model, params, records=[_fact(), _fact()])


def _edit(model):
    from interp.analysis.rome import EditParams, run_edit

    return run_edit(model, EditParams("The {} is in", "Eiffel Tower", "Rome", undo=True, gen_tokens=3,
                                      rome=_small_rome()))


def _overview(model):
    from interp.analysis.overview import OverviewParams, run_overview

    return run_overview(model, OverviewParams(prompts=("The Eiffel Tower is in",)))


def _viewer(model):
    from interp.analysis.induction.viewer import ViewerParams, run_attention_viewer

    return run_attention_viewer(model, ViewerParams(text="ab cd", n_heads=2, seq_len=6, batch=2))


def _inspect(model):
    from interp.analysis.inspect import InspectParams, run_inspect

    return run_inspect(model, InspectParams("ab cd ab", top_k=3))


def _patch(model):
    from interp.analysis.patching import PatchParams, run_patch

    return run_patch(model, PatchParams(clean="ab cd ab", corrupted="ab ce ab", answer=" c", wrong=" d",
                                        kind="attn", method="both"))


# registered name (interp.analysis.registry) -> a small run on the tiny model
ANALYSES = {"patch": _patch, "induction": _induction, "lost-in-middle": _recall, "trace": _trace, "neurons": _neurons,
            "edit-eval": _edit_eval, "edit-scale": _edit_scale, "edit": _edit, "overview": _overview,
            "attention-viewer": _viewer, "inspect": _inspect}
# runs above whose params the command cannot express: the tiny ROME settings (steps, contexts, statistics
# sample length) and neurons' unrelated prompts have no option, and trace's facts come from a file (a CLI run
# prints its own command); tests/analysis/test_reproduce.py round-trips every flag of these too
NOT_ON_THE_CLI = {"edit", "edit-eval", "edit-scale", "trace", "neurons"}


def test_every_registered_analysis_is_checked():
    from interp.analysis.registry import ANALYSES as REGISTERED

    assert set(ANALYSES) == set(REGISTERED)


@pytest.mark.parametrize("name", sorted(ANALYSES))
def test_every_result_keeps_the_protocol(name, model, tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))  # ROME's statistics stay private
    backend = matplotlib.get_backend()
    result = ANALYSES[name](model)
    assert isinstance(result, AnalysisResult)
    assert result.model == model.cfg.name and result.seconds >= 0
    assert type(result.params).__dataclass_params__.frozen  # the params dataclass itself, frozen
    data = json.loads(dumps(result.to_json()))  # plain JSON, no NaN (dumps refuses NaN)
    assert isinstance(data, dict) and data["model"] == model.cfg.name
    tables = result.tables()
    assert tables and all(isinstance(t, pd.DataFrame) for t in tables.values())
    figures = result.figures()
    assert figures and all(isinstance(f, Figure) for f in figures.values())
    assert matplotlib.get_backend() == backend  # no backend switch: figures show inline in notebooks
    from interp.analysis.registry import ANALYSES as REGISTERED, resolve

    assert isinstance(result, resolve(REGISTERED[name].result)) and result.cli_name == name
    findings = result.findings()
    assert findings and all(isinstance(f, Finding) and f.text and f.command == result.reproduce() for f in findings)
    if name not in NOT_ON_THE_CLI:  # the printed command parses back into the params (tests/analysis/test_reproduce)
        assert _parse_back(result.reproduce()) == result.params
    assert all(isinstance(f.value, (int, float, str, bool, type(None))) and isinstance(f.units, str) for f in findings)
    assert result.summary_markdown().strip()
    assert result._repr_markdown_() == result.summary_markdown() and "<" in result._repr_html_()
    assert repr(result).startswith(f"<{type(result).__name__}")
    written = result.write(tmp_path / "out")
    assert (tmp_path / "out" / "findings.json").exists() and len(written["figures"]) == len(figures)


def _parse_back(command: str):
    import shlex

    from cli.main import cli

    args = shlex.split(command)
    assert args[0] == "interp" and args[2] == "--model"
    click_command = cli.get_command(None, args[1])
    params = click_command.params_from_options(**click_command.make_context(args[1], args[2:]).params)
    if "model_name" in {f.name for f in dataclasses.fields(params)}:  # the CLI fills it from --model
        params = dataclasses.replace(params, model_name=None)
    return params


def test_edit_result_undoes_exactly(model, tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    result = _edit(model)
    assert result.undo["weights_restored_exactly"] is True
    assert 0 <= result.before["p_new"] <= 1 and 0 <= result.after["p_new"] <= 1


def test_interp_edit_names_the_editor_it_ran(model, tmp_path, monkeypatch):
    """The default editor is the original ROME, and `interp edit` says so beside the layer; ours says ours."""
    from dataclasses import replace

    from interp.analysis.rome import EditParams, ROMEParams, run_edit

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    assert "(layer 1, original ROME)" in _edit(model).render().splitlines()[0]
    ours = replace(ROMEParams.ours(), **{k: getattr(_small_rome(), k) for k in ("layer", "steps", "context_lengths",
                                                                                "stats")})
    result = run_edit(model, EditParams("The {} is in", "Eiffel Tower", "Rome", undo=True, gen_tokens=3, rome=ours))
    assert "(layer 1, ROME ours)" in result.render().splitlines()[0]


def test_no_hidden_state_on_the_model(model, tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    before = set(vars(model))
    _edit_eval(model)
    assert set(vars(model)) == before  # no memo attributes pinned on the model


def test_analysis_packages_import_nothing_heavy():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; import interp.analysis.induction, interp.analysis.recall, interp.analysis.facts, "
            "interp.analysis.rome, interp.analysis.overview, interp.analysis.result; "
            "print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
