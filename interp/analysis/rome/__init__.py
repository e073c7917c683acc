"""Rewriting facts: ROME rank-one edits (Meng et al. 2022) and MEMIT batch edits (Meng et al. 2023),
as undoable, savable Edit objects, with CounterFact-style evaluation.

    from interp.analysis.rome import EditRequest, rome_edit
    edit = rome_edit(model, EditRequest("The {} is located in the city of", "Eiffel Tower", "Rome"))
    edit.save("eiffel.edit"); edit.undo(model)

Layout as every analysis package: `params.py`, `run.py` (`run_edit_eval`, `run_edit`), `result.py`, then the
algorithm modules (`hparams`, `covariance`, `key`, `value`, `edit`, `memit`, `evaluate`). Importing the package
imports none of them; the names below are loaded on first use.
"""

from __future__ import annotations

from interp.lazy import lazy_attributes

_WHERE = {
    "Edit": "edit", "LayerDelta": "edit", "apply_all": "edit", "undo_all": "edit", "check_target": "edit",
    "export_model": "edit", "rome_edit": "edit", "weight_hash": "edit", "EditRequest": "key",
    "ROMEParams": "hparams", "MEMITParams": "hparams", "StatsParams": "hparams", "EditEvalParams": "params",
    "EditParams": "params", "EditEvalResult": "result", "EditResult": "result", "run_edit_eval": "run",
    "run_edit": "run", "memit_edit": "memit", "StatsCache": "covariance",
}
__all__ = sorted(_WHERE)

__getattr__ = lazy_attributes(__name__, _WHERE)
