"""Tuning and test splits of a fact set, stratified by relation, that never separate a neighbourhood group.

Every setting chosen by a sweep (an editing layer, a MEMIT window, an objective weight) is chosen on the
tuning part; every headline number is measured on the test part. Two facts whose evaluations share a
prompt are not independent: with facts A and B both "in Paris", A's neighbourhood prompts are about B
and B's about A, so tuning on A and testing on B leaks, and a bootstrap that resamples them separately
is too narrow. :func:`neighbourhood_groups` links facts that

- share any prompt among their rewrite, paraphrase and neighbourhood prompts (a fact's own rewrite
  prompt counts, since it is another fact's neighbour), or
- have the same relation and the same true object (CounterFact's neighbours are exactly "other
  subjects, same relation, same true object", so a fact set without neighbourhood prompts, such as
  ``known_1000.json``, gets the groups an edit set built from it will have),

and takes connected components. :func:`make_split` then walks each relation's groups in a seeded order
and puts a group in the tuning part while that brings the relation's tuning count nearer to
``tune_fraction`` of its facts; whole groups move, so a relation's share is met as closely as its
group sizes allow. The split is data: ``experiments/data/splits/*.json`` hold it (ids and groups), and a
test re-makes each file from its fact set.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interp.analysis.facts.records import FactRecord
from interp.errors import InterpError

GROUPING = ("connected components of: a shared prompt (rewrite, paraphrase or neighbourhood), or the same "
            "relation and true object")


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]  # path halving keeps the trees flat
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)  # the smaller index is the root: labels follow file order


def neighbourhood_groups(records: Sequence[FactRecord]) -> list[int]:
    """A group label per fact (0, 1, ... in order of each group's first fact); see the module docstring."""
    uf = _UnionFind(len(records))
    first_owner: dict[Any, int] = {}

    def link(key: Any, i: int) -> None:
        if key in first_owner:
            uf.union(first_owner[key], i)
        else:
            first_owner[key] = i

    for i, r in enumerate(records):
        link(("object", r.relation_id, r.target_true.strip()), i)
        for prompt in {r.text, *r.paraphrase_prompts, *r.neighborhood_prompts}:
            link(("prompt", prompt), i)
    roots = [uf.find(i) for i in range(len(records))]
    labels: dict[int, int] = {}
    return [labels.setdefault(root, len(labels)) for root in roots]


def make_split(records: Sequence[FactRecord], *, seed: int = 0, tune_fraction: float = 0.4) -> dict[str, Any]:
    """{"tune": [ids], "test": [ids], "groups": [[ids], ...], ...}: ids in file order, groups whole."""
    if not 0 < tune_fraction < 1:
        raise InterpError(f"tune_fraction = {tune_fraction} must lie strictly between 0 and 1.")
    ids = [r.case_id for r in records]
    if len(set(ids)) != len(ids):
        raise InterpError("Every fact needs its own case_id to be split; some case_ids repeat.")
    labels = neighbourhood_groups(records)
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(labels):
        members[g].append(i)
    # A group spanning relations (a shared prompt across them) is stratified under its first fact's relation.
    by_relation: dict[str, list[int]] = defaultdict(list)
    for g, idx in members.items():
        by_relation[str(records[idx[0]].relation_id)].append(g)
    rng = np.random.default_rng(seed)
    tune: set[int] = set()
    for relation in sorted(by_relation):
        groups = by_relation[relation]
        target = tune_fraction * sum(len(members[g]) for g in groups)
        have = 0
        for k in rng.permutation(len(groups)):
            size = len(members[groups[k]])
            if abs(have + size - target) < abs(have - target):
                tune.update(members[groups[k]])
                have += size
    return {
        "seed": seed,
        "tune_fraction": tune_fraction,
        "grouping": GROUPING,
        "tune": [ids[i] for i in range(len(ids)) if i in tune],
        "test": [ids[i] for i in range(len(ids)) if i not in tune],
        "groups": [[ids[i] for i in members[g]] for g in sorted(members)],
    }


def save_split(split: dict[str, Any], path: str | Path) -> Path:
    """Write a split as JSON (one line per list, so diffs stay readable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["{"]
    items = list(split.items())
    for n, (key, value) in enumerate(items):
        comma = "," if n < len(items) - 1 else ""
        if key == "groups":
            inner = ",\n  ".join(json.dumps(g) for g in value)
            lines.append(f' "groups": [\n  {inner}\n ]{comma}')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    path.write_text("\n".join(lines) + "\n}\n", encoding="utf-8")
    return path


def load_split(path: str | Path) -> dict[str, Any]:
    """A split file's contents, checked to have disjoint "tune" and "test" id lists."""
    path = Path(path)
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InterpError(f"Split file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InterpError(f"Split file {path} cannot be read as JSON ({e}).") from None
    if not isinstance(split, dict) or not all(isinstance(split.get(k), list) for k in ("tune", "test")):
        raise InterpError(f"Split file {path} must be an object with 'tune' and 'test' lists of ids.")
    if set(split["tune"]) & set(split["test"]):
        raise InterpError(f"Split file {path} puts some ids in both 'tune' and 'test'.")
    return split


def select(records: Sequence[FactRecord], split: dict[str, Any], part: str) -> list[FactRecord]:
    """The records of one part ("tune" or "test"), in file order."""
    if part not in ("tune", "test"):
        raise InterpError(f"Unknown split part {part!r}; choose 'tune' or 'test'.")
    keep = set(split[part])
    return [r for r in records if r.case_id in keep]


def group_labels(records: Sequence[FactRecord], split: dict[str, Any]) -> list[int]:
    """Each record's group index in a split file's "groups" (for a cluster bootstrap over those records)."""
    index = {cid: g for g, ids in enumerate(split.get("groups", [])) for cid in ids}
    missing = [r.case_id for r in records if r.case_id not in index]
    if missing:
        raise InterpError(f"The split's groups do not cover case_id {missing[0]}; re-make the split for these facts.")
    return [index[r.case_id] for r in records]


SPLITS_DIR = Path(__file__).resolve().parents[3] / "experiments" / "data" / "splits"


def load_fact_file(path: str | Path) -> list[FactRecord]:
    """The records of a fact file in either format: ROME's known_1000 (a JSON array of objects with
    "known_id") or CounterFact-style (`interp.analysis.facts.records.load_facts`)."""
    from interp.analysis.facts.known import load_known
    from interp.analysis.facts.records import _read_text, load_facts

    path = Path(path)
    try:
        data = json.loads(_read_text(path))
    except (json.JSONDecodeError, RecursionError):
        data = None  # JSONL, or broken (nested too deeply, ...): load_facts says which, in one sentence
    if isinstance(data, list) and data and isinstance(data[0], dict) and "known_id" in data[0]:
        return load_known(path)
    return load_facts(path)


def load_part(path: str | Path, part: str, split_path: str | Path | None = None) -> list[FactRecord]:
    """One part ("tune" or "test") of a fact file, by its committed split (default:
    ``experiments/data/splits/<file name>``), in file order."""
    path = Path(path)
    split = load_split(split_path if split_path is not None else SPLITS_DIR / path.name)
    return select(load_fact_file(path), split, part)


def load_tune_part(path: str | Path) -> list[FactRecord]:
    """The tuning part of a fact file (an experiment spec's input loader)."""
    return load_part(path, "tune")


def load_test_part(path: str | Path) -> list[FactRecord]:
    """The test part of a fact file (an experiment spec's input loader)."""
    return load_part(path, "test")
