"""What the edit analyses take: `EditEvalParams` (CounterFact-style evaluation) and `EditParams` (one edit,
probed before and after); ROME's and MEMIT's own hyper-parameters are in `hparams.py`."""

from __future__ import annotations

from dataclasses import dataclass, field

from interp.analysis.rome.hparams import OURS_ROME, MEMITParams, ROMEParams
from interp.errors import EditError, InvalidInputError

METRICS = ("efficacy", "paraphrase", "neighborhood")
# params field -> the `interp edit-eval` / `interp edit` option that sets it (the command a result reproduces)
# (dotted: a field of the nested ROME / MEMIT params; --reference and --ours, which set several: `variant_flags`)
_STATS_FLAGS = {"rome.layer": "--layer", "rome.update": "--update", "rome.stats.n_tokens": "--stats-tokens",
                "rome.stats.corpus": "--corpus"}
EVAL_FLAGS = {"facts": "--facts", "limit": "--limit", "sample": "--sample", "known_only": "--all-facts",
              "method": "--method", "edits": "--edits", "gen_tokens": "--gen-tokens",
              "n_gen_prompts": "--gen-prompts", "seed": "--seed", "memit.layers": "--layers", **_STATS_FLAGS}
EDIT_FLAGS = {"prompt": "--prompt", "subject": "--subject", "target": "--target", "load": "--load",
              "save": "--save", "export": "--export", "undo": "--undo", "gen_tokens": "--gen-tokens",
              "rome.context_seed": "--seed", **_STATS_FLAGS}


def variant_flags(rome: ROMEParams, memit: MEMITParams | None = None) -> list[str]:
    """The variant option that gives these editors: --ours where ROME has our v* objective, --reference where
    MEMIT is the original, none for the defaults (the original ROME, our MEMIT)."""
    if all(getattr(rome, k) == v for k, v in OURS_ROME.items() if k != "update"):
        return ["--ours"]
    return ["--reference"] if memit is not None and memit.update == "original" else []


@dataclass(frozen=True)
class EditEvalParams:
    facts: str | None = None  # a CounterFact-style file (records are also accepted by run_edit_eval)
    limit: int | None = None  # the first N facts (after the known-facts filter)
    sample: int | None = None  # or N facts drawn at random (seeded), kept in file order: a mix of relations
    known_only: bool = True  # skip facts whose rewrite prompt the model does not already answer correctly
    method: str = "rome"  # "rome" (sequential when edits > 1) or "memit" (one batch of `edits`)
    edits: int = 1  # facts edited together before evaluation
    rome: ROMEParams = field(default_factory=ROMEParams)
    memit: MEMITParams = field(default_factory=MEMITParams)
    gen_tokens: int = 100  # new tokens per generation prompt (fluency), as the paper
    n_gen_prompts: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("rome", "memit"):
            raise InvalidInputError(f"Unknown edit method {self.method!r}; use rome or memit.")
        if self.edits < 1:
            raise InvalidInputError("--edits must be at least 1.")
        if self.sample is not None and self.sample < 1:
            raise InvalidInputError("--sample must be at least 1.")




@dataclass(frozen=True)
class EditParams:
    """One ROME edit (or one loaded from a file), probed before and after; optionally saved, exported, undone."""

    prompt: str | None = None  # with "{}" where the subject goes
    subject: str | None = None
    target: str | None = None  # the new answer, without a leading space
    load: str | None = None  # an edit file written by `save`, instead of computing one
    save: str | None = None  # write the edit to this new file
    export: str | None = None  # write the edited model into this new folder
    undo: bool = False  # undo at the end and check the weights are back bit for bit
    gen_tokens: int = 20
    rome: ROMEParams = field(default_factory=ROMEParams)

    def __post_init__(self) -> None:
        if self.load is None and (self.prompt is None or self.subject is None or self.target is None):
            raise EditError("Give --prompt, --subject and --target (or --load FILE).")
