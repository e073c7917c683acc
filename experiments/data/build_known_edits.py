"""Build ``experiments/data/known_edits.json``: a CounterFact-style edit set from ROME's known_1000.json.

How each prompt is formed is in ``interp/analysis/facts/known_edits.py``; this script only runs it on the
vendored file (``experiments/data/rome/known_1000.json``) and writes the result. No model is loaded: it
takes about a second. A test (``tests/analysis/evidence/test_known_edits.py``) rebuilds the file and
checks it equals the committed one.

Run: ``.venv/bin/python experiments/data/build_known_edits.py``
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

from interp.analysis.facts.known import KNOWN_1000, load_known
from interp.analysis.facts.known_edits import build_known_edits
from interp.analysis.facts.records import save_facts

OUT = Path(__file__).with_name("known_edits.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--known", type=Path, default=KNOWN_1000)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    facts = load_known(args.known)
    edits = build_known_edits(facts, seed=args.seed)
    save_facts(edits, args.out, overwrite=True)
    no_neighbours = sum(not e.neighborhood_prompts for e in edits)
    print(f"{len(edits)} edits from {len(facts)} facts; {no_neighbours} have no neighbourhood prompt")
    print("per relation:", dict(collections.Counter(e.relation_id for e in edits)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
