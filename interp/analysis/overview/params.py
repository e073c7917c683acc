"""Which prompts the overview reads."""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import InvalidInputError

CLI_FLAGS: dict[str, str] = {"prompts": "--prompt*", "top_k": "--top-k"}


@dataclass(frozen=True)
class OverviewParams:
    prompts: tuple[str, ...] = ("The Eiffel Tower is located in the city of",
                                "Michael Jordan plays the sport of")
    top_k: int = 5

    def __post_init__(self) -> None:
        if not self.prompts or self.top_k < 1:
            raise InvalidInputError("The overview needs at least one prompt and top_k >= 1.")
