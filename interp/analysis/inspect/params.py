"""What `interp inspect` reads: a prompt and how many next tokens to show (no torch here: the CLI checks these
before the model loads)."""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import InvalidInputError

# params field -> CLI flag; "PROMPT" (no dashes) is the command's positional argument
CLI_FLAGS = {"prompt": "PROMPT", "top_k": "--top-k"}


@dataclass(frozen=True)
class InspectParams:
    prompt: str
    top_k: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise InvalidInputError("The prompt is empty; give some text.")
        if self.top_k <= 0:
            raise InvalidInputError(f"--top-k must be at least 1, got {self.top_k}.")
