"""What a benchmark writes into its Markdown file, beside its tables: a block of goal rows (issue 14's goals,
each with what this run measured; `speed_readme.py` builds the README's speed section from these blocks),
and the hand-written notes, which are kept across runs (everything from the notes marker on)."""

from __future__ import annotations

import os
from pathlib import Path

GOALS_START, GOALS_END = "<!-- goals -->", "<!-- /goals -->"
NOTES = "<!-- notes -->"
GOAL_HEADER = "| goal (issue 14) | peer / limit in this run | measured | |"


def threads_env() -> str:
    """The thread setting a run was made under, as a command prefix ("" when OMP_NUM_THREADS is unset)."""
    return f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""


def goals_block(rows: list[tuple[str, str, str, bool | None]]) -> list[str]:
    """Rows (goal, peer or limit, measured, met: True / False / None for not applicable) as a table between
    the markers."""
    mark = {True: "met", False: "**not met**", None: "-"}
    lines = [GOALS_START, "", GOAL_HEADER, "|---|---|---|---|"]
    lines += [f"| {goal} | {peer} | {measured} | {mark[met]} |" for goal, peer, measured, met in rows]
    return lines + ["", GOALS_END]


def write_keeping_notes(path: Path, lines: list[str]) -> str:
    """Write `lines` to path, followed by the notes part of the file already there (from NOTES on), if any.
    Returns the text written."""
    path = Path(path)
    notes = ""
    if path.exists():
        old = path.read_text()
        if NOTES in old:
            notes = NOTES + old.split(NOTES, 1)[1]
    text = "\n".join(lines).rstrip("\n") + "\n" + ("\n" + notes if notes else "")
    path.write_text(text)
    return text


def read_goals(path: Path) -> list[str]:
    """The goal rows of one benchmark's file (table rows only), or [] where it has none."""
    text = Path(path).read_text() if Path(path).exists() else ""
    if GOALS_START not in text or GOALS_END not in text:
        return []
    block = text.split(GOALS_START, 1)[1].split(GOALS_END, 1)[0]
    return [line for line in block.splitlines() if line.startswith("| ") and line != GOAL_HEADER]
