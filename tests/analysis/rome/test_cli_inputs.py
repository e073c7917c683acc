"""`interp edit` / `interp edit-eval` refuse bad input before loading a model."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from interp.analysis.rome import EditEvalParams
from interp.errors import InterpError

from cli.main import cli


def test_edit_refuses_prompt_without_placeholder_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "cli.main", "edit", "--prompt", "The Eiffel Tower is in",
                           "--subject", "Eiffel Tower", "--target", "Rome"], capture_output=True, text=True)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no '{}'" in lines[0], proc.stderr


def test_edit_refuses_existing_save_file(tmp_path):
    existing = tmp_path / "e.edit"
    existing.write_text("x")
    r = CliRunner().invoke(cli, ["edit", "--prompt", "The {} is in", "--subject", "X", "--target", "Rome",
                                 "--save", str(existing)])
    assert r.exit_code != 0 and "already exists" in str(r.exception)


def test_edit_eval_bad_inputs(tmp_path):
    r = CliRunner().invoke(cli, ["edit-eval", "--facts", str(tmp_path / "missing.json")])
    assert r.exit_code != 0 and "does not exist" in str(r.exception)
    r = CliRunner().invoke(cli, ["edit-eval", "--facts", "x.json", "--edits", "0"])
    assert r.exit_code != 0 and "at least 1" in str(r.exception)
    for bad in ({"method": "lora"}, {"edits": 0}, {"sample": 0}):  # refused by the params, before any model
        try:
            EditEvalParams(**bad)
        except InterpError:
            pass
        else:
            raise AssertionError("expected an InterpError")


def test_reference_flag_is_the_original_algorithms():
    from cli.commands.edit import edit_eval_params

    common = dict(facts="f.json", limit=None, sample=None, all_facts=False, method="rome", edits=1, layer=None,
                  layers=None, gen_tokens=100, gen_prompts=2, stats_tokens=None, corpus=None, seed=0)
    ref = edit_eval_params(**common, reference=True)
    assert (ref.rome.update, ref.rome.decay, ref.rome.kl_at, ref.rome.kl_direction, ref.rome.early_stop) == (
        "original", "norm", "subject", "edited", "loss")
    assert ref.memit.update == "original" and ref.memit.rome.clamp_norm_factor == 0.75
    assert ref.memit.rome.context_lengths == ((10, 5),) and ref.memit.rome.steps == 25
    ours = edit_eval_params(**common, reference=False)
    assert (ours.rome.update, ours.rome.decay, ours.memit.update) == ("ours", "squared", "ours")
    rrome = edit_eval_params(**common, reference=True, update="r-rome")
    assert rrome.rome.update == "r-rome" and rrome.rome.decay == "norm"
    try:
        EditEvalParams(rome=__import__("interp.analysis.rome", fromlist=["ROMEParams"]).ROMEParams(update="x"))
    except InterpError as e:
        assert "update must be one of" in str(e)
    else:
        raise AssertionError("expected an InterpError")
