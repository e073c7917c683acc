"""`ruff check` (configured in pyproject.toml's [tool.ruff], pinned in the test extra) finds nothing in the
linted paths, so `make test` fails on a new violation there.

LINTED lists what is clean today. Files still being changed when the linter came in are left out until
their last pass (the remaining violations: `ruff check .`); the list then becomes the whole repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LINTED = [
    "cli/main.py", "cli/commands/__init__.py", "cli/commands/edit.py", "cli/commands/facts.py",
    "cli/commands/induction.py",
    "cli/commands/inspect.py", "cli/commands/models.py", "cli/commands/patch.py", "cli/commands/recall.py",
    "cli/commands/viewer.py",
    "interp/sweep/__init__.py", "interp/sweep/cache.py", "interp/sweep/cli.py", "interp/sweep/engine.py",
    "interp/sweep/runtime.py", "interp/sweep/worker.py", "interp/sweep/tasks/__init__.py",
    "interp/sweep/tasks/edit_eval.py", "interp/sweep/tasks/neurons.py", "interp/sweep/tasks/recall.py",
    "interp/sweep/tasks/report.py", "interp/sweep/tasks/trace.py",
    "interp/analysis/registry.py", "interp/analysis/result.py", "interp/analysis/inspect.py",
    "interp/analysis/induction/viewer.py", "interp/markdown.py",
    "tests/test_lint.py", "tests/test_shape.py", "tests/analysis/test_result_protocol.py",
    "tests/analysis/test_reproduce.py", "tests/cli/test_cli_basic.py", "tests/cli/test_cli_shape.py",
]


def test_ruff_finds_nothing_in_the_linted_paths():
    missing = [p for p in LINTED if not (ROOT / p).exists()]
    assert not missing, f"LINTED names files that do not exist: {missing}"
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *LINTED], cwd=ROOT,
                          capture_output=True, text=True)
    assert "No module named ruff" not in proc.stderr, "ruff is not installed: pip install -e '.[test]'"
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_configuration_is_the_one_in_pyproject():
    """Without [tool.ruff] the check above would run ruff's defaults (line length 88, no import order)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert config["line-length"] == 120
    assert {"E", "F", "W", "I", "B", "UP"} <= set(config["lint"]["select"])
