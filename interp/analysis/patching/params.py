"""What `interp patch` patches: two prompts of equal token length, the answer and the wrong answer, a grid."""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import InvalidInputError

KINDS = ("resid", "attn", "mlp", "heads", "heads_pos")
METHODS = ("activation", "attribution", "both")
CLI_FLAGS: dict[str, str] = {"clean": "--clean", "corrupted": "--corrupted", "answer": "--answer", "wrong": "--wrong",
                             "kind": "--kind", "method": "--method", "direction": "--direction"}


@dataclass(frozen=True)
class PatchParams:
    clean: str = "When Mary and John went to the store, John gave a drink to"
    corrupted: str = "When Mary and John went to the store, Mary gave a drink to"
    answer: str = " Mary"  # the clean prompt's answer; the metric is logit(answer) - logit(wrong)
    wrong: str = " John"
    kind: str = "resid"
    method: str = "activation"  # "both" runs activation and attribution patching and compares their ranks
    direction: str = "denoise"  # clean activations into the corrupted run; "noise": the reverse

    def __post_init__(self) -> None:
        if not self.clean.strip() or not self.corrupted.strip():
            raise InvalidInputError("Both --clean and --corrupted need some text.")
        if not self.answer or not self.wrong:
            raise InvalidInputError("--answer and --wrong must each be some text.")
        if self.kind not in KINDS:
            raise InvalidInputError(f"--kind must be one of {', '.join(KINDS)}, got {self.kind!r}.")
        if self.method not in METHODS:
            raise InvalidInputError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}.")
        if self.direction not in ("denoise", "noise"):
            raise InvalidInputError(f"--direction must be denoise or noise, got {self.direction!r}.")
