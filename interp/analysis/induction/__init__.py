"""Induction heads: find them, explain their circuit, prove them by ablation.

An induction head (Elhage et al. 2021; Olsson et al. 2022, "In-context Learning and Induction Heads")
completes ``A B ... A -> B``: at the second A it attends to the token that followed the first A
(prefix matching) and copies it into the prediction (copying). It needs an earlier previous-token head
whose output at B's position says "my previous token was A", which the induction head reads through its keys
(K-composition). This package scores every head on repeated random tokens (`scores`), reads copying and
composition off the weights (`circuit`), ablates the top heads against random heads from the same layers
and checks natural text (`ablation`), and compares with TransformerLens' head detector (`peer`).

    result = run_induction(model, InductionParams(batch=16, seq_len=64, top_k=5))
    result.heads            # DataFrame, one row per head, sorted by induction score
    result.to_json()        # the --json summary

Layout (every analysis package is laid out alike): `params.py` (the frozen params), `run.py` (the entry
point), `result.py` (the result), then the algorithm modules. Importing the package imports none of them.
"""

from __future__ import annotations

from interp.lazy import lazy_attributes

__all__ = ["InductionParams", "InductionResult", "run_induction"]
_WHERE = {"InductionParams": "params", "InductionResult": "result", "run_induction": "run"}

__getattr__ = lazy_attributes(__name__, _WHERE)
