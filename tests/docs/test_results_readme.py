"""experiments/results/README.md quotes the committed result files: a rerun that changes a number, or a README
edited by hand, fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "experiments" / "results" / "known-1000-trace"


@pytest.mark.parametrize("model, n_layers", [("smollm2-135m", 30), ("gemma3-270m", 18)])
def test_the_known_1000_trace_table_is_each_models_summary(model, n_layers):
    text = " ".join((ROOT / "experiments" / "results" / "README.md").read_text().split())
    summary = json.loads((TRACE / model / "summary.json").read_text())
    census = json.loads((TRACE / model / "census.json").read_text())
    assert f"n = {summary['n_known']} |" in text
    assert f"`{model}`: {summary['n_known']} known facts traced of {summary['n_visited']} visited" in text
    assert f"knows {census['n_known']} of the {census['n_set']} facts" in text
    for key in ("mlp_last_subject", "attn_last", "resid"):
        p = summary["peaks"][key]
        assert p["n_facts"] == summary["n_known"]
        assert (f"{p['category'].replace('_', ' ')} token, layer {p['layer']} of {n_layers} (depth "
                f"{p['layer'] / n_layers:.2f}), AIE {100 * p['aie']:.2f} % [{100 * p['lo']:.2f}, "
                f"{100 * p['hi']:.2f}]") in text


def test_the_readme_quotes_how_many_known_facts_each_trace_averages():
    text = " ".join((ROOT / "README.md").read_text().split())
    counts = {json.loads((TRACE / m / "summary.json").read_text())["n_known"] for m in ("smollm2-135m", "gemma3-270m")}
    assert len(counts) == 1 and f"causal tracing averaged over {counts.pop()} facts of ROME's" in text
