"""Every analysis, registered once: the one table the CLI's command list and help, the sweep layer's sharded
drivers, the report's experiment specs and the protocol tests all read.

A new analysis is its package under `interp.analysis` (params, run, result) plus one `Analysis(...)` line
in `ANALYSES` below (and its Click command, which the CLI finds through ``command``). Everything here is a
``"module:attribute"`` string, so reading the table imports nothing: ``interp --help`` stays free of torch,
and `interp` never imports `cli` (the ``command`` string is only ever resolved by the CLI).
See docs/guides/add-an-analysis.md for the full list of places a new analysis touches.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Analysis:
    name: str  # the CLI command (``interp <name>``) and the result's ``cli_name``
    help: str  # one line in ``interp --help``
    run: str  # "module:run_<name>", the entry point run(model, params, progress=None) -> Result
    params: str  # "module:Params", the frozen params dataclass
    result: str  # "module:Result", a ResultBase subclass with cli_name == name
    command: str  # "cli.commands.<module>:<function>", the Click command (resolved by the CLI only)
    sharded: str | None = None  # "interp.sweep.tasks.<module>:sharded_<name>" when --workers can shard it

    @property
    def entry_name(self) -> str:
        """The entry point's function name (how the sweep layer recognises it behind the CLI's checks)."""
        return self.run.split(":")[1]


def _a(name, help, package, run, params, result, command, sharded=None) -> Analysis:
    """An entry whose targets are given relative to `interp.analysis.<package>` ("run:run_x", or "run_x" for
    an attribute of the package module itself)."""
    base = f"interp.analysis.{package}"

    def at(target: str) -> str:
        return f"{base}.{target}" if ":" in target else f"{base}:{target}"

    return Analysis(name, help, at(run), at(params), at(result), command, sharded)


# in the order of `interp --help`
ANALYSES: dict[str, Analysis] = {a.name: a for a in (
    _a("inspect", "Config, top next tokens and a logit-lens table for a prompt.", "inspect",
       "run:run_inspect", "params:InspectParams", "result:InspectResult", "cli.commands.inspect:inspect_cmd"),
    _a("overview", "The model at a glance: next tokens and the logit lens over a few prompts.", "overview",
       "run:run_overview", "params:OverviewParams", "result:OverviewResult", "cli.commands.inspect:overview"),
    _a("induction", "Find induction heads, their circuit, and prove them by ablation.", "induction",
       "run:run_induction", "params:InductionParams", "result:InductionResult", "cli.commands.induction:induction"),
    _a("attention-viewer", "Rank induction heads and record their attention patterns on a text (the report's viewer).",
       "induction", "viewer:run_attention_viewer", "params:ViewerParams", "viewer:ViewerResult",
       "cli.commands.viewer:attention_viewer"),
    _a("lost-in-middle", "Recall by position of the relevant item, and the attention behind it.", "recall",
       "run:run_lost_in_middle", "params:RecallParams", "result:RecallResult", "cli.commands.recall:lost_in_middle",
       "interp.sweep.tasks.recall:sharded_lost_in_middle"),
    _a("trace", "Causal tracing: where in (token, layer) a fact is recalled.", "facts", "run:run_trace",
       "params:TraceParams", "result:TraceResult", "cli.commands.facts:trace",
       "interp.sweep.tasks.trace:sharded_trace"),
    _a("neurons", "Knowledge neurons by integrated gradients, with controls.", "facts", "run:run_neurons",
       "params:NeuronParams", "neurons_result:NeuronResult", "cli.commands.facts:neurons",
       "interp.sweep.tasks.neurons:sharded_neurons"),
    _a("edit", "Rewrite a fact with a rank-one (ROME) edit; save, load, undo.", "rome", "run:run_edit",
       "params:EditParams", "result:EditResult", "cli.commands.edit:edit"),
    _a("edit-eval", "CounterFact-style evaluation of ROME / MEMIT over a fact file.", "rome", "run:run_edit_eval",
       "params:EditEvalParams", "result:EditEvalResult", "cli.commands.edit:edit_eval",
       "interp.sweep.tasks.edit_eval:sharded_edit_eval"),
    _a("edit-scale", "Edit 1, 10, 100, 1,000 facts per editor (ROME, MEMIT, AlphaEdit, FT-L) and measure the damage.",
       "rome", "scale:run_edit_scale", "scale:EditScaleParams", "scale_result:EditScaleResult",
       "cli.commands.scale:edit_scale"),
    _a("patch", "Activation / attribution patching of a clean vs corrupted prompt pair.", "patching",
       "run:run_patch", "params:PatchParams", "result:PatchReport", "cli.commands.patch:patch"),
)}


def resolve(target: str) -> Any:
    """'package.module:attr' -> the object (imports the module)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def by_entry(entry_name: str) -> Analysis | None:
    """The analysis whose entry point is called `entry_name` (None if none is)."""
    return next((a for a in ANALYSES.values() if a.entry_name == entry_name), None)


def by_run(target: str) -> Analysis | None:
    """The analysis whose entry point is `target` ('module:function', as an experiment spec names it)."""
    return next((a for a in ANALYSES.values() if a.run == target), None)
