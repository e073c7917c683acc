"""What one request to the lab may ask for, and the errors it answers with (each one sentence)."""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import InterpError, InvalidInputError


class BusyError(InterpError):
    """The model is running a long operation; try again when it finishes."""


class TooLargeError(InvalidInputError):
    """A request that would take more memory or time than the server allows."""


class NotFoundError(InterpError):
    """No such edit."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; everything beyond is refused in one sentence."""

    max_prompt_tokens: int = 256  # predict, attention, edit prompts
    max_top_k: int = 50
    max_new_tokens: int = 64  # greedy continuations
    max_trace_tokens: int = 48  # a trace restores every (token, layer) cell: its cost grows with p^2
    max_trace_samples: int = 50
    max_trace_rows: int = 200_000  # kinds x layers x tokens x samples: restored forward rows of one trace
    max_edits: int = 16  # active edits; each keeps exact copies of the matrices it changed, for undo
    max_batch_facts: int = 100  # requests of one fact file written as one edit (each takes seconds to minutes)
    heldout_tokens: int = 512  # tokens of the held-out text whose perplexity a batch is checked on
    max_upload_bytes: int = 16 * 2**20  # an edit file holds low-rank factors: kilobytes to a few MiB
    max_json_bytes: int = 2**20  # a JSON request body: five texts of a 256-token prompt fit many times over
    max_target_tokens: int = 16  # an answer (trace target, edit target): figure titles and the optimised tokens
    max_task_seconds: float = 600.0  # a long task (trace, edit) stops at its next step past this, freeing the model
    chars_per_token: int = 64  # texts longer than this many characters per allowed token are refused untokenized

    def max_chars(self, tokens: int) -> int:
        """The most characters a text of at most `tokens` tokens may have before it is tokenized."""
        return self.chars_per_token * max(1, tokens)
