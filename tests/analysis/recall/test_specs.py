"""The lost-in-the-middle report specs carry their claims: enough examples per point for a +-0.15 interval,
10, 20 and 30 items, the word task and the paper's UUID task; the spec on the paper's own 75-key file sweeps
the paper's gold positions."""

from __future__ import annotations

from pathlib import Path

from interp.analysis.recall.params import resolve_positions
from interp.analysis.recall.stats import wilson
from interp.report.specs import build_params, load_inputs, load_specs

ROOT = Path(__file__).resolve().parents[3]
SPECS = [s for s in load_specs(ROOT / "experiments") if s.analysis.endswith(":run_lost_in_middle")]


def _widest_side(n: int) -> float:
    """The largest distance from an observed accuracy k/n to either end of its Wilson 95% interval, over k."""
    return max(max(k / n - lo, hi - k / n) for k in range(n + 1) for lo, hi in [wilson(k, n)])


def test_the_bound_is_tight_enough_to_mean_something():
    assert _widest_side(43) <= 0.15 < _widest_side(42)
    assert _widest_side(8) > 0.3  # the old report's 8 examples per point


def test_recall_specs_give_every_point_a_0_15_interval():
    assert {build_params(s, "smollm2-135m", load_inputs(s)[0]).task for s in SPECS} >= {"kv-words", "kv"}
    for spec in SPECS:
        for model in ("smollm2-135m", "gemma3-270m"):
            params = build_params(spec, model, load_inputs(spec)[0])
            if params.file is None:
                assert set(params.n_items) >= {10, 20, 30}, spec.name
                # every base example is placed at every position, so each point has n = n_examples
                assert all(len(resolve_positions(params.positions, k)) >= 3 for k in params.n_items)
            else:  # the paper's released file: its k, its gold positions
                assert (ROOT / params.file).is_file(), spec.name
                assert "75_keys" in params.file and resolve_positions(params.positions, 75) == [0, 24, 49, 74]
                assert params.n_items == (75,) and params.max_new_tokens >= 37  # ' "' + a UUID of up to 36 tokens
            assert _widest_side(params.n_examples) <= 0.15, (spec.name, params.n_examples)


def test_the_kv75_spec_is_what_the_resumable_driver_runs():
    from interp.analysis.recall.kv75 import spec_params

    spec = next(s for s in SPECS if s.name == "lost-in-middle-kv75")
    assert build_params(spec, "smollm2-135m", load_inputs(spec)[0]) == spec_params(43)
