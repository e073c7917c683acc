"""The benchmarks' Markdown plumbing (no timing here): goal rows round-trip, hand-written notes survive a
rewrite, and the docs' speed page (docs/speed.md) is what benchmarks/speed_readme.py builds from the committed
files."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import _md  # noqa: E402
import speed_readme  # noqa: E402


def test_notes_survive_a_rewrite_and_goals_round_trip(tmp_path):
    path = tmp_path / "bench.md"
    path.write_text("# old table\n\n" + _md.NOTES + "\nWhy the numbers are what they are.\n")
    rows = [("goal a", "peer 2 s", "1.0x", True), ("goal b", "peer", "3x", False), ("goal c", "-", "n/a", None)]
    text = _md.write_keeping_notes(path, ["# new table", "", *_md.goals_block(rows)])
    assert "old table" not in text and text.startswith("# new table")
    assert text.endswith(_md.NOTES + "\nWhy the numbers are what they are.\n")
    assert _md.read_goals(path) == ["| goal a | peer 2 s | 1.0x | met |", "| goal b | peer | 3x | **not met** |",
                                    "| goal c | - | n/a | - |"]
    # a second rewrite keeps the notes once, not twice
    again = _md.write_keeping_notes(path, ["# newer"])
    assert again.count(_md.NOTES) == 1 and _md.read_goals(path) == []


def test_speed_page_is_generated_from_the_benchmarks():
    page = speed_readme.PAGE.read_text()
    assert speed_readme.PAGE == ROOT / "docs" / "speed.md"
    assert speed_readme.START in page and speed_readme.END in page
    current = speed_readme.START + page.split(speed_readme.START, 1)[1].split(speed_readme.END, 1)[0] + speed_readme.END
    if current != speed_readme.section():
        pytest.fail("docs/speed.md's speed section differs from the benchmarks' files: run "
                    ".venv/bin/python benchmarks/speed_readme.py")
    for name in speed_readme.SOURCES:  # every benchmark behind an issue-14 goal contributes its rows
        assert _md.read_goals(ROOT / "benchmarks" / f"{name}.md"), name


def test_speed_rows_link_files_that_exist():
    # the page lives in docs/, so each row's link climbs out of it to the benchmark file it cites
    section = speed_readme.section()
    links = re.findall(r"\]\(([^)]+)\)", section)
    assert links and all(link.startswith("../benchmarks/") for link in links)
    for link in links:
        assert (ROOT / "docs" / link).resolve().is_file(), link


def test_readme_has_no_speed_section_left():
    # the README links the speed page instead of carrying a copy that would need regenerating too
    readme = (ROOT / "README.md").read_text()
    assert speed_readme.START not in readme and "docs/speed.md" in readme
