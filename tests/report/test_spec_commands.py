"""Each experiment spec's printed CLI command reproduces exactly its params: the command is parsed by the
real Click command and turned into params by the same code the command runs, then compared field by field
with the params the report builds from the spec (loaded inputs included)."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest

from interp.report.specs import build_params, load_inputs, load_specs

from cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
SPECS = [s for s in load_specs(ROOT / "experiments") if s.command]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
@pytest.mark.parametrize("model", ["smollm2-135m", "gemma3-270m"])
def test_spec_command_parses_back_to_its_params(spec, model, monkeypatch):
    monkeypatch.chdir(ROOT)  # the commands name data files relative to the repository
    args = shlex.split(spec.cli_command(model))
    assert args[0] == "interp"
    command = cli.get_command(None, args[1])
    ctx = command.make_context(args[1], args[2:])
    from_cli = command.params_from_options(**ctx.params)
    to_params, kwargs, _ = load_inputs(spec)
    from_spec = build_params(spec, model, to_params)
    if "model_name" in {f.name for f in dataclasses.fields(from_spec)}:  # the CLI names the model it loads
        from_cli = dataclasses.replace(from_cli, model_name=None)
    if "records" in kwargs:  # edit-eval gets its facts as records, read from the file the command names
        from cli.commands.edit import edit_eval_records

        split = Path(args[args.index("--split") + 1]) if "--split" in args else None
        assert tuple(edit_eval_records(Path(from_cli.facts), split)) == tuple(kwargs["records"])
        from_cli = dataclasses.replace(from_cli, facts=None)
    assert from_cli == from_spec


def test_every_analysis_spec_has_a_command():
    specs = {s.name: s for s in load_specs(ROOT / "experiments")}
    assert {"induction", "lost-in-middle", "trace", "neurons", "edit-eval"} <= {s.name for s in SPECS}
    assert not specs["attention-viewer"].command  # no CLI equivalent: `interp run attention-viewer` reproduces it


def _round_trip(result_cls, params, model="smollm2-135m"):
    """The command a result built from `params` would print, parsed back by the CLI into params."""
    from interp.analysis.result import command_line

    args = shlex.split(command_line(result_cls.cli_name, model, params, result_cls.cli_flags))
    command = cli.get_command(None, args[1])
    back = command.params_from_options(**command.make_context(args[1], args[2:]).params)
    if "model_name" in {f.name for f in dataclasses.fields(back)}:
        back = dataclasses.replace(back, model_name=None)
    return back


def test_results_default_command_reproduces_their_params():
    from interp.analysis.facts.neurons_result import NeuronResult
    from interp.analysis.facts.params import NeuronParams, TraceParams
    from interp.analysis.facts.result import TraceResult
    from interp.analysis.induction.params import InductionParams
    from interp.analysis.induction.result import InductionResult
    from interp.analysis.recall.params import RecallParams
    from interp.analysis.recall.result import RecallResult

    cases = [
        (InductionResult, InductionParams(batch=2, seq_len=6, top_k=2, text=False, peer_bridge=False, threshold=0.5)),
        (RecallResult, RecallParams(n_items=(4, 8), positions="all", generate=False, n_boot=50, seed=3)),
        (TraceResult, TraceParams(prompt="{} plays the sport of", subject="Michael Jordan", kinds=("mlp",), seed=2)),
        (NeuronResult, NeuronParams(paraphrases=("The Eiffel Tower, in", "Eiffel Tower: in"), steps=3)),
    ]
    for result_cls, params in cases:
        assert _round_trip(result_cls, params) == params
