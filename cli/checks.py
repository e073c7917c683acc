"""Input checks shared by the commands: each bad value is one sentence naming the option, before any work.

Two kinds: checks of the options alone (`at_least`, `finite`, `text_source`), run before the model
loads; and checks that need the model (`top_k_fits`, `layers_exist`, `single_token_note`, the memory
estimates of `interp.memory`), run right after it loads and before anything is computed (`checked`
wraps an analysis entry point with them).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import click

from interp.errors import InvalidInputError


def at_least(option: str, value: int | None, least: int = 1) -> None:
    if value is not None and value < least:
        raise InvalidInputError(f"{option} must be at least {least}, got {value}.")


def finite(option: str, value: float | None, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> None:
    """A real number (not NaN, not infinite), optionally within [low, high] ((low, high] if `low_open`)."""
    if value is None:
        return
    if not math.isfinite(value):
        raise InvalidInputError(f"{option} must be a finite number, got {value}.")
    if low is not None and (value < low or (low_open and value == low)):
        raise InvalidInputError(f"{option} must be {'above' if low_open else 'at least'} {low:g}, got {value:g}.")
    if high is not None and value > high:
        raise InvalidInputError(f"{option} must be at most {high:g}, got {value:g}.")


def text_source(option: str, path: Path | None) -> None:
    """A .txt file or folder of .txt files that holds some text."""
    if path is None:
        return
    path = Path(path)
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    for f in files:
        try:
            with open(f, "rb") as handle:
                if handle.read(1 << 16).strip():
                    return
        except OSError as exc:
            raise InvalidInputError(f"{option} {f} cannot be read: {exc.strerror or exc}.") from None
    raise InvalidInputError(
        f"{option} {path} holds no text; give a .txt file or a folder of .txt files with text in them.")


def top_k_fits(model, top_k: int) -> None:
    if top_k > model.cfg.d_vocab:
        raise InvalidInputError(
            f"--top-k {top_k} is more than {model.cfg.name}'s vocabulary of {model.cfg.d_vocab} tokens.")


def layers_exist(model, option: str, layers) -> None:
    n = model.cfg.n_layers
    for layer in layers or ():
        if not 0 <= layer < n:
            raise InvalidInputError(
                f"{option} names layer {layer}, which {model.cfg.name} does not have (layers 0-{n - 1}).")


def single_token_note(model, target: str | None) -> None:
    """trace and neurons score one token: say so when the answer is longer (a note, not an error)."""
    if not target:
        return
    from interp.model.tokenize import answer_ids

    ids = answer_ids(model, target)
    if len(ids) > 1:
        first = model.to_string(ids[:1])
        click.echo(f"Note: --target {target!r} is {len(ids)} tokens; only its first token {first!r} is scored.",
                   err=True)


def prompt_fits(model, text: str, extra: int = 0, what: str = "prompt", fix: str = "shorten the prompt") -> int:
    """The prompt's length in tokens, refused when it (plus `extra` generated tokens) exceeds the model's
    context or the memory a forward over it needs."""
    from interp import memory

    n = len(model.encode(text)) + extra  # not to_tokens: it would truncate to the context
    if n > model.cfg.n_ctx:
        raise InvalidInputError(f"The {what} is {n} tokens, longer than {model.cfg.name}'s context of "
                                f"{model.cfg.n_ctx}; {fix}.")
    memory.check(memory.forward_bytes(model, 1, n), f"A {n}-token {what}", fix, model.device)
    return n


def checked(entry: Callable, *checks: Callable) -> Callable:
    """`entry` with `checks(model, params)` run first: after the model loads, before any work. It keeps
    `entry`'s name, which is how the sweep layer finds the sharded driver (whose workers load their own model)."""
    @functools.wraps(entry)
    def run(model, params, **kwargs):
        for check in checks:
            check(model, params)
        return entry(model, params, **kwargs)

    return run
