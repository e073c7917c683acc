"""Every registered analysis: the command its result prints (`reproduce()`, built by `ResultBase.command_for`
from the params) parses back, through the real Click command and its `params_from_options`, into exactly
those params. Each case sets every option the result's flag table knows to a non-default value, so a flag
the table gets wrong (a missing option, a wrong name, a value written in a form the option does not read)
fails here. No model is loaded."""

from __future__ import annotations

import dataclasses
import shlex

import pytest

from interp.analysis.registry import ANALYSES, resolve
from interp.analysis.result import _field

from cli.main import cli

MODEL = "smollm2-135m"

# analysis -> options that set every flagged field to something other than its default
CASES = {
    "inspect": [["--top-k", "3", "--", "-5 degrees is cold, says the"], ["The Eiffel Tower is in", "-k", "7"]],
    "overview": [["--prompt", "a b", "--prompt", "c 'd'", "--top-k", "3"]],
    "attention-viewer": [["--text", "ab cd", "--n-heads", "2", "--seq-len", "6", "--batch", "2", "--seed", "1"]],
    "induction": [["--batch", "2", "--seq-len", "6", "--top-k", "2", "--seeds", "2", "--seed", "3", "--no-text",
                   "--text", "{text}", "--text-samples", "1", "--text-tokens", "9", "--text-mode", "zero",
                   "--no-peer", "--no-peer-bridge", "--peer-texts", "1", "--peer-seq-len", "5", "--threshold",
                   "0.25", "--prev-threshold", "0.5", "--comp-sources", "2", "--circuit", "path",
                   "--path-receivers", "2", "--path-pairs", "1", "--path-seq-len", "5", "--ablation-seed", "5"]],
    "lost-in-middle": [["--task", "qa", "--n-items", "4,8", "--positions", "all", "--examples", "3", "--query-aware",
                        "--repeat-gold", "--mitigations", "--no-generate", "--max-new-tokens", "4", "--batch-size",
                        "2", "--reuse-prefix", "--top-heads", "3", "--n-boot", "50", "--seed", "2"]],
    "trace": [["--prompt", "{} plays the sport of", "--subject", "Michael Jordan", "--target", " basketball",
               "--samples", "2", "--noise", "2.5", "--window", "3", "--kinds", "mlp,attn", "--batch-size", "4",
               "--seed", "2"]],
    "neurons": [["--prompt", "The {} is in", "--subject", "Louvre", "--target", " Paris", "--paraphrase",
                 "Louvre: in", "--paraphrase", "The Louvre, in", "--paraphrase", "Louvre, in", "--steps", "3",
                 "--threshold", "0.5",
                 "--random-seeds", "2", "--seed", "4", "--max-prompts", "4", "--heldout", "1"]],
    "edit": [["--prompt", "The {} is in", "--subject", "Eiffel Tower", "--target", "Rome", "--load", "{text}",
              "--save", "{new}", "--export", "{new}-model", "--undo", "--gen-tokens", "3", "--seed", "5",
              "--layer", "1", "--update", "r-rome", "--stats-tokens", "40", "--corpus", "{text}"]],
    "edit-eval": [["--facts", "facts.json", "--limit", "3", "--sample", "2", "--all-facts", "--method", "memit",
                   "--edits", "2", "--gen-tokens", "5", "--gen-prompts", "1", "--seed", "6", "--layer", "1",
                   "--layers", "1,2", "--update", "r-rome", "--stats-tokens", "40", "--corpus", "{text}"]],
    "edit-scale": [["--facts", "facts.json", "--methods", "rome,alphaedit", "--checkpoints", "1,5", "--batch-size",
                    "3", "--all-facts", "--sample", "4", "--controls", "2", "--heldout", "{text}", "--heldout-tokens",
                    "64", "--gen-prompts", "1", "--gen-tokens", "5", "--check-every", "2", "--seed", "7", "--layer",
                    "1", "--layers", "1,2", "--stats-tokens", "40", "--corpus", "{text}", "--null-threshold", "0.5",
                    "--null-relative", "0.01", "--alpha-l2", "2", "--ft-eps", "0.001", "--collapse-factor", "5",
                    "--on-outlier", "stop", "--max-minutes", "30"]],
    "patch": [["--clean", "ab cd ab", "--corrupted", "ab ce ab", "--answer", " c", "--wrong", " d", "--kind",
               "heads", "--method", "both", "--direction", "noise"]],
}

# flagged fields a case cannot set to a non-default value here, and why
UNSET = {
    "lost-in-middle": {"file": "needs one of the paper's jsonl files"},
    "trace": {"sample": "needs --facts, whose records a flag cannot carry (a --facts run prints its own command)"},
    "neurons": {k: "needs --facts, whose records a flag cannot carry (a --facts run prints its own command)"
                for k in ("relations", "per_relation", "tune_per_relation", "n_unrelated")},
}


# params fields no option of the command sets (so a result's derived command leaves them at their defaults);
# a new field must either get a flag in the result's cli_flags or be listed here
UNFLAGGED = {
    "induction": {"model_name"},  # the CLI fills it from --model
    "trace": {"facts", "sigma", "known_only"},
    "neurons": {"facts", "tune_facts", "p_start", "p_step", "min_neurons", "max_neurons", "max_rounds", "min_prompts",
                "unrelated", "batch_rows"},  # facts and tune_facts: --facts with --split
}


def _parse(args: list[str]):
    command = cli.get_command(None, args[1])
    assert command is not None, f"no CLI command {args[1]!r}"
    params = command.params_from_options(**command.make_context(args[1], args[2:]).params)
    return params


def _fill(args: list[str], tmp_path) -> list[str]:
    text = tmp_path / "text.txt"
    text.write_text("Some text to read.\n")
    return [a.replace("{text}", str(text)).replace("{new}", str(tmp_path / "new")) for a in args]


def test_every_registered_analysis_has_cases():
    assert set(CASES) == set(ANALYSES)


@pytest.mark.parametrize("name", sorted(ANALYSES))
def test_every_params_field_has_a_flag_or_is_listed(name):
    entry = ANALYSES[name]
    flagged = {path.split(".")[0] for path in resolve(entry.result).cli_flags}
    fields = {f.name for f in dataclasses.fields(resolve(entry.params))}
    assert fields - flagged == UNFLAGGED.get(name, set())


@pytest.mark.parametrize("name, i", [(n, i) for n in sorted(CASES) for i in range(len(CASES[n]))])
def test_reproduce_parses_back_into_the_params(name, i, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    entry = ANALYSES[name]
    result_cls = resolve(entry.result)
    assert result_cls.cli_name == name
    params = _parse(["interp", name, *_fill(CASES[name][i], tmp_path)])
    assert isinstance(params, resolve(entry.params))
    unset = {k for k, why in UNSET.get(name, {}).items() if why}
    for path in result_cls.cli_flags:  # the case reaches every flag, so the round trip tests each one
        value, default = _field(params, path)
        assert path in unset or value != default, f"the {name} case leaves {path} at its default"
    command = result_cls.command_for(MODEL, params)
    args = shlex.split(command)
    assert args[:4] == ["interp", name, "--model", MODEL]
    assert _parse(args) == params, command


EDIT = ["--prompt", "The {} is in", "--subject", "Eiffel Tower", "--target", "Rome"]


@pytest.mark.parametrize("variant", ["--ours", "--reference", None])
@pytest.mark.parametrize("name, args", [("edit", EDIT), ("edit-eval", ["--facts", "facts.json", "--method", "memit"]),
                                        ("edit-eval", ["--facts", "facts.json", "--update", "r-rome"]),
                                        ("edit-scale", ["--facts", "facts.json"])])
def test_the_editor_variant_flags_round_trip(name, args, variant):
    """--ours and --reference set several fields at once, so no single field's flag writes them: the derived
    command must still give back the same editors (and --reference with --ours is refused)."""
    result_cls = resolve(ANALYSES[name].result)
    params = _parse(["interp", name, *args, *([variant] if variant else [])])
    command = result_cls.command_for(MODEL, params)
    assert _parse(shlex.split(command)) == params, command
    if variant == "--ours" or (variant == "--reference" and name != "edit"):  # edit has no MEMIT to tell apart
        assert variant in shlex.split(command)
    else:
        assert "--ours" not in command and "--reference" not in command


def test_a_result_reproduces_its_own_command_first():
    from interp.analysis.inspect import InspectParams, InspectResult

    params = InspectParams("The Eiffel Tower is in", 3)
    result = InspectResult(MODEL, params, 0.0, {}, [], [], None)
    assert result.reproduce() == "interp inspect --model smollm2-135m --top-k 3 'The Eiffel Tower is in'"
    result.command = "interp inspect 'The Eiffel Tower is in' -k 3"
    assert result.reproduce() == result.command


def test_a_result_without_a_command_says_so():
    from interp.analysis.result import ResultBase

    with pytest.raises(TypeError, match="registry"):
        ResultBase.command_for(MODEL, dataclasses.make_dataclass("P", [])())
