"""Never lose work: `interp report` killed in the middle of an experiment or of publishing resumes into a
complete, correct report; the runner never trusts a mutated model (issue #15, items 4 and 6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import write_spec

from interp.errors import InterpError
from interp.report.pipeline import make_report
from interp.report.specs import load_specs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def env_for(cache: Path, **extra: str) -> dict:
    """The environment of a driver process: this checkout (or the PYTHONPATH given) and this folder importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELIABILITY_")}
    path = [env.get("PYTHONPATH") or str(ROOT), str(HERE)]
    env.update(PYTHONPATH=os.pathsep.join(path), INTERP_CACHE=str(cache), INTERP_SPEC_MODULES="reliability_fake",
               **extra)
    return env


def driver(specs: Path, out: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "report_driver.py"), str(specs), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def run_to_the_end(specs: Path, out: Path, cache: Path) -> str:
    proc = driver(specs, out, env_for(cache))
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    return [line for line in stdout.splitlines() if line.startswith("STATUSES")][0]


def kill_when(proc: subprocess.Popen, flag: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not flag.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the kill point: {proc.communicate()[1][-2000:]}")
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


@pytest.fixture
def specs(tmp_path) -> Path:
    folder = tmp_path / "experiments"
    for i, name in enumerate(["alpha", "beta", "gamma"]):
        write_spec(folder, name, 10 * (i + 1), params=f'text = "{name}"')
    return folder


def assert_complete(out: Path, reference: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["name"] for e in manifest["experiments"]] == ["alpha", "beta", "gamma"]
    assert all(e["status"] in ("computed", "cached") for e in manifest["experiments"])
    page = (out / "index.html").read_text()
    for name in ("alpha", "beta", "gamma"):
        assert f'<section id="{name}">' in page
        assert json.loads((out / name / "summary.json").read_text()) == json.loads(
            (reference / name / "summary.json").read_text())
        assert (out / name / "figures" / "plot.png").stat().st_size > 0
    assert not [p.name for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]


@pytest.mark.slow
def test_killed_in_the_middle_of_an_experiment_resumes(tmp_path, specs):
    cache, out, flag = tmp_path / "cache", tmp_path / "reports" / "tiny", tmp_path / "in-beta"
    proc = driver(specs, out, env_for(cache, RELIABILITY_WAIT_TEXT="beta", RELIABILITY_WAIT_FILE=str(flag)))
    kill_when(proc, flag)
    assert (out / ".interp-report").is_file()  # the folder was marked as interp's before any work
    assert not (out / "manifest.json").exists()
    statuses = run_to_the_end(specs, out, cache)
    assert statuses == "STATUSES cached computed computed"  # alpha finished before the kill: reused
    run_to_the_end(specs, tmp_path / "reference", tmp_path / "cache2")
    assert_complete(out, tmp_path / "reference")


@pytest.mark.slow
def test_killed_in_the_middle_of_publishing_resumes(tmp_path, specs):
    cache, out, flag = tmp_path / "cache", tmp_path / "reports" / "tiny", tmp_path / "publishing"
    proc = driver(specs, out, env_for(cache, RELIABILITY_PUBLISH_WAIT_FILE=str(flag)))
    kill_when(proc, flag)
    assert not (out / "manifest.json").exists()  # killed before the report was complete
    statuses = run_to_the_end(specs, out, cache)
    assert statuses == "STATUSES cached cached computed"  # each is published as it ends: killed publishing beta
    run_to_the_end(specs, tmp_path / "reference", tmp_path / "cache2")
    assert_complete(out, tmp_path / "reference")


def test_a_report_refreshed_in_place_keeps_a_valid_manifest_at_every_moment(tmp_path, tiny, cache_env, specs,
                                                                               monkeypatch):
    """The manifest is replaced by rename: a write that fails half-way leaves the old one intact."""
    out = tmp_path / "report"
    make_report(tiny, "tiny", load_specs(specs), out, progress=False, echo=lambda s: None)
    old = (out / "manifest.json").read_text()
    import interp.jsonio as jsonio

    real = jsonio.dumps
    # text that cannot be encoded: the write fails after the file was opened (as a full disk would)
    monkeypatch.setattr(jsonio, "dumps", lambda obj, indent=2: real(obj, indent) + "\ud800")
    with pytest.raises(UnicodeEncodeError):
        make_report(tiny, "tiny", load_specs(specs), out, progress=False, echo=lambda s: None)
    assert (out / "manifest.json").read_text() == old
    assert not [p.name for p in out.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("fail", [False, True], ids=["left-changed", "failed-and-left-changed"])
def test_a_mutated_model_stops_the_report_in_one_sentence(tmp_path, tiny, cache_env, fail):
    folder = tmp_path / "experiments"
    write_spec(folder, "alpha", 10, params='text = "a"')
    write_spec(folder, "mutant", 20, params="mutate = true" + ("\nfail = true" if fail else ""))
    write_spec(folder, "omega", 30, params='text = "z"')
    seen: list[str] = []
    with pytest.raises(InterpError, match="weights changed") as info:
        make_report(tiny, "tiny", load_specs(folder), tmp_path / "out", progress=False, echo=seen.append)
    assert "\n" not in str(info.value)
    assert not any("omega" in line for line in seen)  # nothing ran on the changed model


def test_a_failed_experiment_that_restores_the_model_does_not_stop_the_report(tmp_path, tiny, cache_env):
    folder = tmp_path / "experiments"
    write_spec(folder, "broken", 10, params="fail = true")
    write_spec(folder, "fine", 20, params='text = "ok"')
    outcome = make_report(tiny, "tiny", load_specs(folder), tmp_path / "out", progress=False, echo=lambda s: None)
    assert [r.status for r in outcome.runs] == ["failed", "computed"]
