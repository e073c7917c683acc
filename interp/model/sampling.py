"""The sampling options' checks, apart from `interp.model.generate` so that the CLI refuses a bad option before
it imports torch."""

from __future__ import annotations

from interp.errors import InvalidInputError


def check_sampling(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None) -> None:
    if max_new_tokens <= 0:
        raise InvalidInputError(f"max_new_tokens must be at least 1, got {max_new_tokens}.")
    if temperature < 0:
        raise InvalidInputError(f"temperature must be 0 (greedy) or positive, got {temperature}.")
    if top_k is not None and top_k <= 0:
        raise InvalidInputError(f"top_k must be a positive number of tokens, got {top_k}.")
    if top_p is not None and not 0 < top_p <= 1:
        raise InvalidInputError(f"top_p must be in (0, 1], got {top_p}.")
