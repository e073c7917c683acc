"""`ruff check` (configured in pyproject.toml's [tool.ruff], pinned in the test extra) finds nothing in the
repository (Python files and the tutorial notebooks), so `make test` fails on any new violation.

A rule is silenced only on its line, with a `# noqa: CODE` and the reason beside or above it; the
configuration's `ignore` list holds the rules the project declines everywhere, each with its reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LINTED = ["."]  # the whole repository; ruff skips what .gitignore and extend-exclude name


def test_ruff_finds_nothing_in_the_linted_paths():
    missing = [p for p in LINTED if not (ROOT / p).exists()]
    assert not missing, f"LINTED names files that do not exist: {missing}"
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *LINTED], cwd=ROOT,
                          capture_output=True, text=True)
    assert "No module named ruff" not in proc.stderr, "ruff is not installed: pip install -e '.[test]'"
    assert proc.returncode == 0, proc.stdout + proc.stderr



def test_every_tracked_python_file_and_notebook_is_linted():
    """An exclude (in the configuration or .gitignore) must not hide a file the repository holds."""
    tracked = subprocess.run(["git", "ls-files", "*.py", "*.ipynb"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout: no list of tracked files to compare with")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--show-files", *LINTED], cwd=ROOT,
                          capture_output=True, text=True)
    seen = {Path(line).resolve() for line in proc.stdout.splitlines() if line.strip()}
    unlinted = [f for f in tracked.stdout.splitlines() if (ROOT / f).resolve() not in seen]
    assert tracked.stdout.strip() and not unlinted, f"ruff does not check {unlinted[:5]}"

def test_the_configuration_is_the_one_in_pyproject():
    """Without [tool.ruff] the check above would run ruff's defaults (line length 88, no import order)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert config["line-length"] == 120
    assert {"E", "F", "W", "I", "B", "UP"} <= set(config["lint"]["select"])
