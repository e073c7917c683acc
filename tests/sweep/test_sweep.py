"""Sharded runs on 2 local Ray workers give the serial run's output byte for byte (tiny model), survive a
worker killed mid-sweep, and resume from the shard cache after the driver stopped."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest

from tests.sweep.tiny_char import FACTS, tiny_char_model

TIMING = {"seconds", "seconds_per_edit"}


def _strip(data):
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k not in TIMING}
    if isinstance(data, list):
        return [_strip(v) for v in data]
    return data


def assert_same_output(serial, sharded, tmp_path: Path) -> None:
    """Same JSON (wall-clock seconds aside) and the same bytes in every file --out writes but summary.*"""
    from interp.jsonio import dumps

    assert dumps(_strip(serial.to_json())) == dumps(_strip(sharded.to_json()))
    a, b = tmp_path / "serial", tmp_path / "sharded"
    serial.write(a)
    sharded.write(b)
    files = sorted(p.relative_to(a) for p in a.rglob("*.csv"))
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*.csv"))
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    for name in ("summary.json", "findings.json"):
        assert _strip(json.loads((a / name).read_text())) == _strip(json.loads((b / name).read_text())), name


@pytest.fixture(scope="module")
def actors(ray_runtime):
    """Two actors with the tiny model, started once for this module's tests (each test its own cache)."""
    from interp.sweep.engine import Sweep

    with Sweep.start(tiny_char_model, key=None, runtime=ray_runtime, progress=False) as sweep:
        yield sweep


@contextlib.contextmanager
def _sweep(sweep, key, cache=True, on_dispatch=None, on_result=None):
    """The module's sweep with this test's shard cache (under its INTERP_CACHE) and hooks."""
    from interp.sweep.cache import ShardCache

    sweep.cache = ShardCache(key, enabled=cache)
    sweep.on_dispatch, sweep.on_result, sweep.computed, sweep.replaced = on_dispatch, on_result, 0, 0
    try:
        yield sweep
    finally:
        sweep.on_dispatch = sweep.on_result = None


def _small_rome():
    from interp.analysis.rome import ROMEParams, StatsParams

    return ROMEParams(layer=1, steps=2, context_lengths=((2, 2),), stats=StatsParams(n_tokens=40, sample_len=8))


def _edit_eval_params():
    from interp.analysis.rome import EditEvalParams

    return EditEvalParams(known_only=False, rome=_small_rome(), gen_tokens=3, n_gen_prompts=1)


def _trace_params(known_only: bool = False):
    from interp.analysis.facts.params import TraceParams

    # FACTS[0] is the single prompt itself: the serial run reuses the single trace for it
    return TraceParams(prompt="The {} is in", subject="Eiffel Tower", target="Paris", samples=2, window=2,
                       facts=FACTS, known_only=known_only)


def test_edit_eval_two_workers_equals_serial(actors, shard_root, tmp_path):
    from interp.analysis.rome import run_edit_eval
    from interp.sweep.tasks.edit_eval import sharded_edit_eval

    params = _edit_eval_params()
    serial = run_edit_eval(tiny_char_model(), params, records=list(FACTS))
    with _sweep(actors, "edit-eval") as sweep:
        sharded = sharded_edit_eval(sweep, params, records=list(FACTS))
        assert sweep.computed == len(FACTS)  # one fact per shard here
    assert len(sharded.per_fact) == len(FACTS)
    assert_same_output(serial, sharded, tmp_path)


def test_known_facts_filter_on_workers(actors, shard_root, tmp_path):
    """With the known-facts filter a random model knows nothing: the same one-sentence refusal."""
    from interp.analysis.rome import EditEvalParams, run_edit_eval
    from interp.errors import InvalidInputError
    from interp.sweep.tasks.edit_eval import sharded_edit_eval

    params = EditEvalParams(known_only=True, rome=_small_rome(), gen_tokens=3, n_gen_prompts=1)
    with pytest.raises(InvalidInputError) as serial:
        run_edit_eval(tiny_char_model(), params, records=list(FACTS))
    with _sweep(actors, "known") as sweep, pytest.raises(InvalidInputError) as sharded:
        sharded_edit_eval(sweep, params, records=list(FACTS))
    assert str(serial.value) == str(sharded.value)


def test_trace_facts_two_workers_equals_serial(actors, shard_root, tmp_path):
    from interp.analysis.facts.run import run_trace
    from interp.sweep.tasks.trace import sharded_trace

    params = _trace_params()
    serial = run_trace(tiny_char_model(), params)
    with _sweep(actors, "trace") as sweep:
        sharded = sharded_trace(sweep, params)
    assert sharded.facts[0] is sharded.single  # the single prompt's fact: the single trace, as serially
    assert_same_output(serial, sharded, tmp_path)
    # facts a random model does not know are skipped alike (and counted)
    params = _trace_params(known_only=True)
    serial = run_trace(tiny_char_model(), params)
    with _sweep(actors, "trace-known") as sweep:
        sharded = sharded_trace(sweep, params)
    assert serial.skipped and sharded.skipped == serial.skipped
    assert_same_output(serial, sharded, tmp_path / "known")


def test_neurons_facts_two_workers_equals_serial(actors, shard_root, tmp_path):
    from interp.analysis.facts.params import NeuronParams
    from interp.analysis.facts.run import run_neurons
    from interp.sweep.tasks.neurons import sharded_neurons

    params = NeuronParams(facts=FACTS[:3], steps=2, random_seeds=1, n_unrelated=2, min_prompts=1)
    serial = run_neurons(tiny_char_model(), params)
    assert any(f.neurons for f in serial.facts)  # controls run too
    with _sweep(actors, "neurons") as sweep:
        sharded = sharded_neurons(sweep, params)
    assert_same_output(serial, sharded, tmp_path)


@pytest.mark.parametrize("reuse", [False, True])
def test_lost_in_middle_two_workers_equals_serial(actors, shard_root, tmp_path, reuse):
    from interp.analysis.recall.params import RecallParams
    from interp.analysis.recall.run import run_lost_in_middle
    from interp.sweep.tasks.recall import sharded_lost_in_middle

    params = RecallParams(n_items=(2, 3), positions="all", n_examples=3, max_new_tokens=2, n_boot=20,
                          batch_size=2, reuse_prefix=reuse)
    serial = run_lost_in_middle(tiny_char_model(), params)
    with _sweep(actors, "recall") as sweep:
        sharded = sharded_lost_in_middle(sweep, params)
        assert sweep.computed > 2  # a plan shard, then several scoring shards
    assert_same_output(serial, sharded, tmp_path)


def test_worker_killed_mid_sweep_is_retried_on_another(actors, shard_root, tmp_path):
    """SIGKILL one actor's process while it holds a shard: the shard runs again elsewhere, same result."""
    from interp.analysis.facts.run import run_trace
    from interp.sweep.tasks.trace import sharded_trace

    killed = []

    def kill_second(sweep, actor, index):
        if index == 2 and not killed:
            pid = sweep.pid_of(actor)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    params = _trace_params()
    with _sweep(actors, "fault", on_dispatch=kill_second) as sweep:
        sharded = sharded_trace(sweep, params)
        assert killed and sweep.replaced == 1
        assert killed[0] not in sweep.pids()  # the dead process was replaced by a fresh actor
    assert_same_output(run_trace(tiny_char_model(), params), sharded, tmp_path)


def test_rerun_after_driver_stopped_redoes_only_missing_shards(actors, shard_root, tmp_path):
    from interp.analysis.rome import run_edit_eval
    from interp.sweep.tasks.edit_eval import sharded_edit_eval

    class DriverKilled(BaseException):
        pass

    def die_after_two(sweep, index):
        if sweep.computed == 2:
            raise DriverKilled

    params = _edit_eval_params()
    with _sweep(actors, "resume", on_result=die_after_two) as sweep, pytest.raises(DriverKilled):
        sharded_edit_eval(sweep, params, records=list(FACTS))
    assert sweep.cache.count() == 2
    with _sweep(actors, "resume") as sweep:
        sharded = sharded_edit_eval(sweep, params, records=list(FACTS))
        assert sweep.computed == len(FACTS) - 2  # only the missing shards ran
    assert sweep.cache.count() == len(FACTS)
    serial = run_edit_eval(tiny_char_model(), params, records=list(FACTS))
    assert_same_output(serial, sharded, tmp_path)


def test_edits_never_leak_between_shards(actors, shard_root):
    """A shard that edits the weights and fails: the worker puts them back before its next shard."""
    with _sweep(actors, "leak", cache=False) as sweep:
        with pytest.raises(Exception):  # noqa: B017 (any failure: what matters is the weights after it)
            sweep.map("tests.sweep.shard_fns:edit_then_fail", [(i, i) for i in range(1)])
        sums = sweep.map("tests.sweep.shard_fns:w_out_sum", [(i, i) for i in range(4)])
    assert len(set(sums)) == 1 and sums[0] == pytest.approx(sum(float(b.mlp.w_out.detach().sum())
                                                                for b in tiny_char_model().blocks))
