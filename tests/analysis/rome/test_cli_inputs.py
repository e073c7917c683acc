"""`interp edit` / `interp edit-eval` refuse bad input before loading a model."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from cli.main import cli
from interp.analysis.rome import EditEvalParams
from interp.errors import InterpError


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
