"""The commands' side: Ray is never imported without --workers / --ray-address, its absence is one sentence,
and `interp report` on workers writes the report the serial run writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SWEEP_COMMANDS = ("edit-eval", "trace", "neurons", "lost-in-middle", "run", "report")


def _run(code: str, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | env
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=environ,
                          timeout=600)


@pytest.mark.slow  # a fresh interpreter
def test_without_workers_ray_is_never_imported():
    code = (
        "import sys, cli.common\n"
        "from tests.sweep.tiny_char import tiny_char_model\n"
        "cli.common.load_model_for_cli = lambda *a, **k: tiny_char_model()\n"
        "from cli.common import run_cli\nfrom cli.main import cli\n"
        "sys.argv = ['interp', 'trace', '--prompt', 'The {} is in', '--subject', 'Eiffel Tower', '--target', 'Paris',"
        " '--samples', '1', '--window', '1', '--no-progress', '--json']\n"
        "rc = run_cli(cli)\n"
        "print('RC', rc, 'ray' in sys.modules)\n")
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "RC 0 False"
    assert json.loads("\n".join(out.stdout.strip().splitlines()[:-1]))["model"] == "tiny-llama"


@pytest.mark.slow  # fresh interpreters
@pytest.mark.parametrize("option", [["--workers", "2"], ["--ray-address", "127.0.0.1:6379"]])
def test_workers_without_ray_is_one_sentence(option, tmp_path):
    code = ("import sys\nsys.modules['ray'] = None  # as if Ray were not installed\n"
            "from cli.common import run_cli\nfrom cli.main import cli\n"
            "sys.argv = ['interp', 'edit-eval', '--facts', 'experiments/data/facts.json', '--limit', '2', "
            f"*{option!r}]\n"
            "sys.exit(run_cli(cli))\n")
    out = _run(code, INTERP_CACHE=str(tmp_path))
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert out.returncode == 1 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "pip install 'interp[ray]'" in errors[0]


def test_ray_address_comes_from_the_environment_too():
    from click.testing import CliRunner

    from cli.main import cli

    for name in SWEEP_COMMANDS:
        command = cli.get_command(None, name)
        option = next(p for p in command.params if p.name == "ray_address")
        assert option.envvar == "RAY_ADDRESS" and any(p.name == "workers" for p in command.params), name
    assert "--workers" in CliRunner().invoke(cli, ["edit-eval", "--help"]).output


def test_bad_worker_count_is_one_sentence():
    from interp.errors import InvalidInputError
    from interp.sweep.runtime import start

    with pytest.raises(InvalidInputError, match="at least 1"):
        start(workers=0)


SPEC = """
name = "{name}"
title = "Fake {name}"
order = {order}
analysis = "tests.report.report_fake_analysis:run_fake"
params_class = "tests.report.report_fake_analysis:FakeParams"
seed = 3
command = "interp fake --model {{model}}"
[params]
n_tokens = {n}
"""


def test_report_on_workers_equals_the_serial_report(ray_runtime, shard_root, tmp_path, monkeypatch):
    """Experiments run on the workers (their own cache), come back as files, and the report is the same."""
    from interp.report.pipeline import make_report
    from interp.report.specs import load_specs
    from interp.sweep.cli import runner_from
    from interp.sweep.engine import Sweep
    from interp.sweep.tasks.report import run_experiments
    from tests.sweep.tiny_char import tiny_char_model

    monkeypatch.setenv("INTERP_SPEC_MODULES", "tests")  # the specs name a fake analysis in tests/
    folder = tmp_path / "experiments"
    folder.mkdir()
    for i, name in enumerate(("alpha", "beta")):
        (folder / f"{name}.toml").write_text(SPEC.format(name=name, order=i, n=6 + i))
    specs = load_specs(folder)
    model = tiny_char_model()
    serial = make_report(model, "tiny", specs, tmp_path / "serial", progress=False, echo=lambda s: None)
    with Sweep.start(tiny_char_model, runtime=ray_runtime, cache=False, progress=False) as sweep:
        outputs = run_experiments(sweep, "tiny", specs, recompute=True)
    other_cache = tmp_path / "driver-cache"  # a fresh driver cache: the workers' entries must land in it
    monkeypatch.setenv("INTERP_CACHE", str(other_cache))
    sharded = make_report(model, "tiny", specs, tmp_path / "sharded", progress=False, echo=lambda s: None,
                          run_one=runner_from(outputs))
    assert [r.status for r in sharded.runs] == ["computed", "computed"]
    assert all(str(r.folder).startswith(str(other_cache)) for r in sharded.runs)
    for name in ("alpha", "beta"):
        a, b = serial.folder / name, sharded.folder / name
        skip = ("run.json", "summary.json")
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name not in skip)
        assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name not in skip)
        for rel in files:
            if rel.suffix != ".png":  # figures: same data, PNG metadata may differ
                assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_recorded_command_is_the_serial_one():
    """Results computed on workers record the command without --workers / --ray-address (same numbers)."""
    from interp.sweep.cli import serial_command

    assert serial_command("interp trace --facts f.json --workers 2 --prompt 'a b' --ray-address=h:1") == \
        "interp trace --facts f.json --prompt 'a b'"


def test_a_cluster_that_cannot_be_joined_is_one_sentence_with_the_auth_hint(monkeypatch):
    """Ray joins an explicit address without token auth unless RAY_AUTH_MODE says so: the refusal says how."""
    import types

    from interp.errors import InterpError
    from interp.sweep import runtime

    def init(**kwargs):
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.5:6379\nmore detail")

    fake = types.SimpleNamespace(is_initialized=lambda: False, init=init)
    monkeypatch.setattr(runtime, "import_ray", lambda: fake)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    with pytest.raises(InterpError) as err:
        runtime.start(address="10.0.0.5:6379")
    message = str(err.value)
    assert message.startswith("Could not join the Ray cluster at 10.0.0.5:6379: Failed to connect")
    assert "RAY_AUTH_MODE=token" in message and "\n" not in message
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # already set: no hint
    with pytest.raises(InterpError) as err:
        runtime.start(address="10.0.0.5:6379")
    assert "RAY_AUTH_MODE" not in str(err.value)
