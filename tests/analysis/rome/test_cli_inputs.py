"""`interp edit` / `interp edit-eval` refuse bad input before loading a model."""

from __future__ import annotations

import subprocess
import sys

import pytest
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


def test_each_editor_defaults_to_its_test_part_winner_and_the_flags_pick_a_variant():
    """No flag: the original ROME (it tied with ours on the test part) and our MEMIT (it won); --reference: both
    originals; --ours: both ours; --update swaps ROME's update only; both flags together are refused."""
    from cli.commands.edit import edit_eval_params

    common = dict(facts="f.json", limit=None, sample=None, all_facts=False, method="rome", edits=1, layer=None,
                  layers=None, gen_tokens=100, gen_prompts=2, stats_tokens=None, corpus=None, seed=0)
    original = ("original", "norm", "subject", "edited", "loss")
    ours_fields = ("ours", "squared", "last", "orig", "nll")

    def rome_fields(p):
        return (p.rome.update, p.rome.decay, p.rome.kl_at, p.rome.kl_direction, p.rome.early_stop)

    default = edit_eval_params(**common, reference=False)
    assert rome_fields(default) == original
    assert default.memit.update == "ours" and default.memit.post_norm == "invert"
    assert rome_fields(default.memit) == ours_fields  # MEMIT's z optimisation: our objective
    ref = edit_eval_params(**common, reference=True)
    assert rome_fields(ref) == original
    assert ref.memit.update == "original" and ref.memit.rome.clamp_norm_factor == 0.75
    assert ref.memit.rome.context_lengths == ((10, 5),) and ref.memit.rome.steps == 25
    ours = edit_eval_params(**common, reference=False, ours=True)
    assert rome_fields(ours) == ours_fields and ours.memit.update == "ours"
    stats = edit_eval_params(**{**common, "stats_tokens": 123}, reference=False)
    assert stats.rome.stats.n_tokens == stats.memit.rome.stats.n_tokens == 123
    rrome = edit_eval_params(**common, reference=False, update="r-rome")
    assert rrome.rome.update == "r-rome" and rrome.rome.decay == "norm"
    ours_rrome = edit_eval_params(**common, reference=False, ours=True, update="r-rome")
    assert ours_rrome.rome.update == "r-rome" and ours_rrome.rome.decay == "squared"
    with pytest.raises(InterpError, match="not both"):
        edit_eval_params(**common, reference=True, ours=True)
    try:
        EditEvalParams(rome=__import__("interp.analysis.rome", fromlist=["ROMEParams"]).ROMEParams(update="x"))
    except InterpError as e:
        assert "update must be one of" in str(e)
    else:
        raise AssertionError("expected an InterpError")
