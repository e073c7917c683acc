"""Regenerate the docs' speed page (docs/speed.md, between its speed markers) from the benchmarks' own files:
every goal row of benchmarks/{forward,causal_trace,recall,rome}.md and forward.md's table of contenders.
Nothing is measured here; run the benchmarks first (each file names its command, machine and load).

    .venv/bin/python benchmarks/speed_readme.py
"""

from __future__ import annotations

from pathlib import Path

from _md import GOAL_HEADER, read_goals

HERE = Path(__file__).parent
PAGE = HERE.parent / "docs" / "speed.md"
LINK = "../benchmarks/"  # from docs/ to this folder (the docs build rewrites it to the site's copy)
START, END = "<!-- speed -->", "<!-- /speed -->"
SOURCES = ("forward", "causal_trace", "recall", "rome")


def _table(text: str, header: str) -> list[str]:
    """The lines of the Markdown table whose header line starts with `header`, or []."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(header):
            end = i
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            return lines[i:end]
    return []


def section() -> str:
    rows = []
    for name in SOURCES:
        rows += [line + f" [{name}.md]({LINK}{name}.md) |" for line in read_goals(HERE / f"{name}.md")]
    forward = (HERE / "forward.md").read_text() if (HERE / "forward.md").exists() else ""
    described = next((line for line in forward.splitlines() if line.startswith("Model ")), "")
    out = [START,
           "<!-- written by benchmarks/speed_readme.py from benchmarks/*.md: edit those, then rerun it -->", "",
           "The project's speed goals, each measured side by side with its peer in one run of the benchmark "
           "named (the file gives the command, the machine and its load):", "",
           GOAL_HEADER.replace("goal (issue 14)", "goal") + " from |", "|---|---|---|---|---|", *rows, ""]
    if described:
        intro = "The forward, against `transformers` on the same weights (eager and its default sdpa). "
        out += [intro + described, "", *_table(forward, "| input | contender"), ""]
    return "\n".join(out + [END])


def main() -> None:
    text = PAGE.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{PAGE} has no {START} ... {END} markers to write between.")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    generated = section()
    PAGE.write_text(head + generated + tail)
    print(generated)


if __name__ == "__main__":
    main()
