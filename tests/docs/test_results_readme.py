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


KV75 = ROOT / "experiments" / "results" / "lost-in-middle-kv75" / "smollm2-135m"


def test_the_kv75_table_and_counts_are_the_committed_run():
    import pandas as pd

    text = " ".join((ROOT / "experiments" / "results" / "README.md").read_text().split())
    curves = pd.read_csv(KV75 / "curves.csv").set_index("gold_position")
    rule = pd.read_csv(KV75 / "paper_rule.csv").set_index("gold_position")
    examples = pd.read_csv(KV75 / "examples.csv")
    n = int(json.loads((KV75 / "run.json").read_text())["n_examples"])
    assert set(curves["n"]) == {n} and set(rule["n"]) == {n}
    for pos, c in curves.iterrows():
        r = rule.loc[pos]
        row = (f"| {pos} | {n} | {r['paper_kv']:.2f} [{r['paper_kv_lo']:.2f}, {r['paper_kv_hi']:.2f}] | "
               f"{c['choice_accuracy']:.2f} [{c['choice_accuracy_lo']:.2f}, {c['choice_accuracy_hi']:.2f}] | "
               f"{c['logprob']:.1f} [{c['logprob_lo']:.1f}, {c['logprob_hi']:.1f}] | {c['median_rank']:g} |")
        assert row in text, row
    assert f"SmolLM2, {n} base examples (the file's first {n})" in text
    copied = int(rule["correct"].mul(rule["n"]).sum())
    assert f"{copied} of {4 * n} prompts" in text
    contrasts = pd.read_csv(KV75 / "contrasts.csv").set_index(["metric", "contrast"])
    best = contrasts.loc["best_logprob", "mean"].astype(int)
    top = int(best.idxmax())
    assert f"highest with the key at position {top} (in {best.max()} of the {n} examples" in text
    assert best.sum() == n == examples["example_id"].nunique()
    c = contrasts.loc[("choice_correct", "ends - middle")]
    assert f"ends minus middle, paired over examples: {c['mean']:+.2f} [{c['lo']:+.2f}, {c['hi']:+.2f}]" in text
    for name in ("49 - 0", "49 - 74"):
        c = contrasts.loc[("logprob", name)]
        assert f"{name.replace('-', 'minus')}, {c['mean']:+.1f}" in text and f"[{c['lo']:+.1f}, {c['hi']:+.1f}]" in text
    kinds = pd.read_csv(KV75 / "answer_kinds.csv").sum()
    assert kinds["the value"] == 0 and kinds["n"] == 4 * n
    assert (f"{kinds['empty']} are empty (a newline first), {kinds['uuid in the prompt'] + kinds['uuid elsewhere']} "
            f"are UUIDs ({kinds['uuid in the prompt']} another key or value of the same prompt, "
            f"{kinds['uuid elsewhere']} found nowhere in it) and {kinds['other']} numbers or fragments") in text
