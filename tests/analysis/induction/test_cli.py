"""`interp induction`: bad input is one sentence and a non-zero exit; --json has the agreed layout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("args, message", [
    (["--seq-len", "1"], "seq-len"),
    (["--batch", "0"], "batch"),
    (["--seeds", "0"], "seeds"),
    (["--text", "/nonexistent/file.txt"], "does not exist"),
])
def test_bad_input_is_refused_before_loading(args, message):
    result = CliRunner().invoke(cli, ["induction", *args])
    assert result.exit_code != 0
    assert message in (result.output + str(result.exception))


def test_bad_input_is_one_line_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "cli.main", "induction", "--seq-len", "2"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("Error:") and "--seq-len" in proc.stderr


def test_refuses_non_empty_out_without_force(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["induction", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "--force" in (result.output + str(result.exception))
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_json_layout_and_out_folder(smollm2, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["induction", "--batch", "2", "--seq-len", "12", "--top-k", "2", "--seeds", "1",
                                      "--no-text", "--no-peer", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model"] == "smollm2-135m"
    assert len(data["heads"]) == smollm2.cfg.n_layers * smollm2.cfg.n_heads
    for h in data["heads"]:
        assert {"layer", "head", "induction_score", "prev_token_score", "copying_score"} <= set(h)
    scores = [h["induction_score"] for h in data["heads"]]
    assert scores == sorted(scores, reverse=True)
    assert {"k", "top_loss_increase", "random_loss_increase_mean", "random_loss_increase_std"} <= set(data["ablation"])
    assert data["ablation"]["k"] == 2
    for name in ("heads.csv", "ablation.csv", "composition.csv", "loss_by_position.csv", "figures/heatmap.png",
                 "figures/strongest_head_pattern.png", "figures/circuit.png", "summary.md", "summary.json",
                 "findings.json"):
        assert (out / name).exists(), name
