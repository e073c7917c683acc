"""The errors interp raises for things a user can fix.

Every user-facing failure is an :class:`InterpError` whose message is one clear sentence. The CLI turns
these into that sentence on stderr and a non-zero exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class InterpError(Exception):
    """Base class: the message is one sentence a user can act on."""


class UnknownModelError(InterpError):
    """A model name that is not registered and not a path."""


class ModelNotInstalledError(InterpError):
    """A registered model whose weights package is missing; the message holds the pip command."""


class CorruptModelError(InterpError):
    """A weights file that cannot be read: truncated, wrong checksum, missing tensors."""


class InvalidInputError(InterpError):
    """Bad user input: an empty prompt, a prompt longer than the context, a bad sampling parameter."""


class DataFormatError(InterpError):
    """A data file in the wrong format; the message names the file, the line and the field."""

    def __init__(self, path: object, line: int | None, field: str | None, problem: str):
        where = f"{path}"
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.field, self.problem = path, line, field, problem


class EditError(InterpError):
    """A fact edit that cannot be made or applied (subject not in prompt, edit made for another model)."""
