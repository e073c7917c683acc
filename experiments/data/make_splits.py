"""Write the committed tuning/test splits: ``experiments/data/splits/{facts,known_1000}.json``.

Each split is stratified by relation, seeded (seed 0, 40 % tuning) and keeps every neighbourhood group
whole; how groups are formed is in ``interp/analysis/facts/splits.py``. The edit set built from
known_1000 (``known_edits.json``) keeps known_1000's case ids, so ``splits/known_1000.json`` splits it too.
A test (``tests/analysis/evidence/test_splits.py``) re-makes both files and checks they equal these.

Run: ``.venv/bin/python experiments/data/make_splits.py`` (no model; about a second).
"""

from __future__ import annotations

import collections
from pathlib import Path

from interp.analysis.facts.known import load_known
from interp.analysis.facts.records import load_facts
from interp.analysis.facts.splits import make_split, save_split

HERE = Path(__file__).parent
SEED, TUNE_FRACTION = 0, 0.4
FACT_SETS = {
    "facts": lambda: load_facts(HERE / "facts.json"),
    "known_1000": lambda: load_known(HERE / "rome" / "known_1000.json"),
}


def split_path(name: str) -> Path:
    return HERE / "splits" / f"{name}.json"


def main() -> None:
    for name, load in FACT_SETS.items():
        records = load()
        split = make_split(records, seed=SEED, tune_fraction=TUNE_FRACTION)
        save_split(split, split_path(name))
        tune = set(split["tune"])
        counts = collections.defaultdict(lambda: [0, 0])
        for r in records:
            counts[r.relation_id][r.case_id not in tune] += 1
        print(f"{name}: {len(split['tune'])} tune / {len(split['test'])} test, {len(split['groups'])} groups")
        print("  per relation (tune, test):", {k: tuple(v) for k, v in sorted(counts.items())})
        print(f"  wrote {split_path(name)}")


if __name__ == "__main__":
    main()
