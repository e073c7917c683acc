"""Write one part ("tune" or "test") of a fact file's split as a CounterFact file the CLI reads (``--facts``).

    .venv/bin/python experiments/data/write_part.py --facts experiments/data/known_edits.json \
        --split experiments/data/splits/known_1000.json --part test --out /tmp/known_edits_test.json

``--traced-prompts`` (known_edits.json only) puts back the prompt the causal-tracing paper traced for each
fact (known_1000's ``prompt``: the template plus GPT-2 XL's words up to the answer) in place of the edit
set's rewrite prompt, for averaging causal traces over known_1000 as the paper did. The neighbourhood
groups of the part's facts (for a cluster bootstrap) are in the split file's "groups".
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from interp.analysis.facts.records import load_facts, save_facts
from interp.analysis.facts.splits import load_split, select


def traced(record):
    """The record with known_1000's traced prompt as its prompt (the subject's first occurrence is the slot)."""
    prompt = record.extra.get("known_prompt")
    if prompt is None or record.subject not in prompt:
        raise SystemExit(f"fact {record.case_id} has no known_prompt naming its subject; use known_edits.json")
    return dataclasses.replace(record, prompt=prompt.replace(record.subject, "{}", 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--part", choices=("tune", "test"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--traced-prompts", action="store_true")
    args = parser.parse_args()
    records = select(load_facts(args.facts), load_split(args.split), args.part)
    if args.traced_prompts:
        records = [traced(r) for r in records]
    save_facts(records, args.out, overwrite=True)
    print(f"wrote {len(records)} {args.part} facts of {args.facts} to {args.out}")


if __name__ == "__main__":
    main()
