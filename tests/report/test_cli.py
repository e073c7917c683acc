"""`interp run` and `interp report` through click, with the model loader swapped for the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli


@pytest.fixture
def patched_loader(monkeypatch, tiny_llama):
    import cli.commands.report as cmd

    monkeypatch.setattr(cmd, "load_model_for_cli", lambda name, *a, **k: tiny_llama)
    return tiny_llama


def test_run_then_cached_then_force(patched_loader, spec_dir, cache_env, fake_calls, tmp_path):
    runner = CliRunner()
    args = ["run", "alpha", "--model", "tiny", "--experiments", str(spec_dir), "--no-progress"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "The mean residual norm is" in first.output and "computed" in first.output
    assert "Reproduce: interp run alpha --model tiny" in first.output
    second = runner.invoke(cli, args + ["--json"])
    assert json.loads(second.stdout)["status"] == "cached" and fake_calls["n"] == 1
    third = runner.invoke(cli, args + ["--recompute", "--out", str(tmp_path / "copy")])
    assert third.exit_code == 0 and fake_calls["n"] == 2
    assert (tmp_path / "copy" / "per_layer.csv").exists() and (tmp_path / "copy" / "figures" / "per_layer.png").exists()


def test_run_rejects_unknown_and_disabled(patched_loader, spec_dir, cache_env):
    runner = CliRunner()
    bad = runner.invoke(cli, ["run", "nope", "--experiments", str(spec_dir)])
    assert bad.exit_code != 0 and "Unknown experiment 'nope'" in str(bad.exception)
    off = runner.invoke(cli, ["run", "gamma", "--experiments", str(spec_dir)])
    assert off.exit_code != 0 and "waiting for its analysis" in str(off.exception)


def test_report_only_and_force(patched_loader, spec_dir, cache_env, fake_calls, tmp_path):
    runner = CliRunner()
    root = tmp_path / "reports"
    base = ["report", "--model", "tiny", "--out", str(root), "--experiments", str(spec_dir), "--no-progress"]
    done = runner.invoke(cli, base + ["--only", "alpha"])
    assert done.exit_code == 0, done.output
    manifest = json.loads((root / "tiny" / "manifest.json").read_text())
    assert [(e["name"], e["status"]) for e in manifest["experiments"]] == [
        ("alpha", "computed"), ("beta", "not selected"), ("gamma", "not selected")]
    assert manifest["command"] == f"interp report --model tiny --out {root} --only alpha"
    full = runner.invoke(cli, base)
    assert full.exit_code == 0 and fake_calls["n"] == 2  # alpha reused, beta computed
    assert "reused from cache" in full.output
    forced = runner.invoke(cli, base + ["--recompute"])
    assert forced.exit_code == 0 and fake_calls["n"] == 4
    assert (root / "tiny" / "index.html").exists() and (root / "tiny" / "report.md").exists()


def test_report_refuses_a_folder_it_did_not_write(patched_loader, spec_dir, cache_env, tmp_path):
    (tmp_path / "reports" / "tiny").mkdir(parents=True)
    (tmp_path / "reports" / "tiny" / "notes.md").write_text("mine")
    result = CliRunner().invoke(cli, ["report", "--model", "tiny", "--out", str(tmp_path / "reports"),
                                      "--experiments", str(spec_dir)])
    assert result.exit_code != 0 and "not an interp report" in str(result.exception)
    assert (tmp_path / "reports" / "tiny" / "notes.md").read_text() == "mine"


def test_one_line_error_from_the_entry_point(tmp_path):
    """Bad input reaches the user as one sentence, no traceback (unknown experiment, no model load)."""
    proc = subprocess.run([sys.executable, "-m", "cli.main", "run", "no-such-experiment"], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("Error: Unknown experiment 'no-such-experiment'; known: ")
    assert "Traceback" not in proc.stderr
