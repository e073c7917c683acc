"""What a lost-in-the-middle sweep covers: a frozen, validated dataclass, and how positions are given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interp.analysis.recall.prompts import TASKS
from interp.errors import InvalidInputError

# params field -> the `interp lost-in-middle` option that sets it (the command each result reproduces)
CLI_FLAGS = {"task": "--task", "n_items": "--n-items", "positions": "--positions", "n_examples": "--examples",
             "file": "--file", "query_aware": "--query-aware", "repeat_gold": "--repeat-gold",
             "mitigations": "--mitigations", "generate": "--no-generate", "max_new_tokens": "--max-new-tokens",
             "batch_size": "--batch-size", "seed": "--seed", "reuse_prefix": "--reuse-prefix",
             "top_heads": "--top-heads", "n_boot": "--n-boot"}


@dataclass(frozen=True)
class RecallParams:
    """What to sweep. `positions`: "all", "N" (N evenly spaced, ends included) or "a,b,c" (indices,
    negative from the end). `file`: one of the paper's jsonl(.gz) files instead of generated examples
    (its k is used; `n_items` is ignored)."""

    task: str = "kv-words"
    n_items: tuple[int, ...] = (10, 20, 30)
    positions: str = "5"
    n_examples: int = 20
    file: str | None = None
    query_aware: bool = False
    repeat_gold: bool = False
    mitigations: bool = False
    generate: bool = True
    max_new_tokens: int | None = None
    batch_size: int = 8
    seed: int = 0
    reuse_prefix: bool = False  # shared-prefix KV reuse (evaluate.score_examples): for dense sweeps
    top_heads: int = 10
    n_boot: int = 1000

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InvalidInputError(f"Unknown task {self.task!r}; choose one of {', '.join(TASKS)}.")
        if self.n_examples < 1:
            raise InvalidInputError(f"Need at least one example, got {self.n_examples}.")
        if not self.n_items or min(self.n_items) < 1:
            raise InvalidInputError("Every context size must be at least one item.")
        if self.batch_size < 1:
            raise InvalidInputError(f"The batch size must be at least 1, got {self.batch_size}.")


def resolve_positions(spec: str, k: int) -> list[int]:
    """Gold positions (0-based) for a k-item context from "all", "N" or "a,b,c"."""
    spec = spec.strip().lower()
    if spec == "all":
        return list(range(k))
    try:
        values = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise InvalidInputError(
            f"Positions {spec!r} must be 'all', a count like '5', or indices like '0,4,9'.") from None
    if not values:
        raise InvalidInputError("No gold positions given; use 'all', a count like '5', or indices like '0,4,9'.")
    if "," not in spec:
        if values[0] < 1:
            raise InvalidInputError(f"The number of positions must be at least 1, got {values[0]}.")
        return sorted({int(round(x)) for x in np.linspace(0, k - 1, min(values[0], k))})
    for v in values:
        if not -k <= v < k:
            raise InvalidInputError(f"Gold position {v} is out of range for {k} items (0 to {k - 1}).")
    return sorted({v % k for v in values})
