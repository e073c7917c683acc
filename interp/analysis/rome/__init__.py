"""Rewriting facts: ROME rank-one edits (Meng et al. 2022) and MEMIT batch edits (Meng et al. 2023),
as undoable, savable Edit objects, with CounterFact-style evaluation.

    from interp.analysis.rome import EditRequest, rome_edit
    edit = rome_edit(model, EditRequest("The {} is located in the city of", "Eiffel Tower", "Rome"))
    edit.save("eiffel.edit"); edit.undo(model)
"""

from interp.analysis.rome.edit import Edit, LayerDelta, apply_all, check_target, export_model, rome_edit, undo_all, weight_hash
from interp.analysis.rome.evaluate import EditEvalParams, EditEvalResult, run_edit_eval
from interp.analysis.rome.hparams import MEMITParams, ROMEParams, StatsParams
from interp.analysis.rome.key import EditRequest
from interp.analysis.rome.memit import memit_edit

__all__ = ["Edit", "LayerDelta", "EditRequest", "ROMEParams", "MEMITParams", "StatsParams", "EditEvalParams",
           "EditEvalResult", "rome_edit", "memit_edit", "run_edit_eval", "apply_all", "undo_all", "check_target",
           "export_model", "weight_hash"]
