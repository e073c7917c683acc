"""The CLI means the same everywhere: shared options on every command, help text on every option, an example
in every command's help; JSON on stdout is plain JSON (NaN as null)."""

from __future__ import annotations

import json
import math

import click
import pytest

from cli.main import COMMANDS, cli

NAMES = sorted(COMMANDS)


def _command(name: str) -> click.Command:
    return cli.get_command(None, name)


@pytest.mark.parametrize("name", NAMES)
def test_every_option_has_help_and_the_command_an_example(name):
    command = _command(name)
    options = [p for p in command.params if isinstance(p, click.Option)]
    assert all(p.help for p in options), [p.opts for p in options if not p.help]
    assert "Example:" in (command.help or "")


@pytest.mark.parametrize("name", NAMES)
def test_shared_options_on_every_command(name):
    flags = {opt for p in _command(name).params for opt in p.opts}
    if name != "serve":  # a server writes no result: it has no --json / --out
        assert {"--json", "--out", "--force", "--no-progress"} <= flags
    if name != "models":
        assert {"--model", "--device", "--dtype"} <= flags
    dtype = next(p for p in _command(name).params if "--dtype" in p.opts) if name != "models" else None
    if dtype is not None:
        assert tuple(dtype.type.choices) == ("float32", "bfloat16", "float16") and dtype.default == "float32"


def test_force_never_means_recompute():
    for name in ("run", "report"):
        flags = {opt for p in _command(name).params for opt in p.opts}
        assert "--recompute" in flags


def test_one_serialiser_turns_nan_into_null():
    import numpy as np

    from interp.jsonio import dumps

    text = dumps({"a": float("nan"), "b": np.float32(1.5), "c": [math.inf, np.int64(2)], "d": (1, 2)})
    assert json.loads(text) == {"a": None, "b": 1.5, "c": [None, 2], "d": [1, 2]}
