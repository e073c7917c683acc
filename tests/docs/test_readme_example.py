"""The README's Python example runs on SmolLM2 and prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _example() -> tuple[str, str]:
    """(the code of the README's "From Python" block, the output block shown under it)."""
    text = (ROOT / "README.md").read_text().split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", text, re.S).group(1)
    return code, shown


def test_the_example_is_ten_lines_or_so():
    code, shown = _example()
    lines = [line for line in code.splitlines() if line.strip()]
    assert 8 <= len(lines) <= 13 and shown.strip()


@pytest.mark.slow
def test_readme_example_prints_what_the_readme_shows(smollm2):
    # smollm2 (the session's model) is asked for so the test is skipped where the package is missing; the
    # example loads its own copy, as a reader's session would, from the cache that fixture filled
    code, shown = _example()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert out.getvalue() == shown
