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


KV75 = ROOT / "experiments" / "results" / "lost-in-middle-kv75"


@pytest.mark.parametrize("model, label", [("smollm2-135m", "SmolLM2"), ("gemma3-270m", "Gemma-3")])
def test_the_kv75_tables_and_counts_are_the_committed_runs(model, label):
    import pandas as pd

    text = " ".join((ROOT / "experiments" / "results" / "README.md").read_text().split())
    out = KV75 / model
    curves = pd.read_csv(out / "curves.csv").set_index("gold_position")
    rule = pd.read_csv(out / "paper_rule.csv").set_index("gold_position")
    n = int(json.loads((out / "run.json").read_text())["n_examples"])
    assert set(curves["n"]) == {n} and set(rule["n"]) == {n}
    for pos, c in curves.iterrows():
        r = rule.loc[pos]
        row = (f"| {pos} | {n} | {r['paper_kv']:.2f} [{r['paper_kv_lo']:.2f}, {r['paper_kv_hi']:.2f}] | "
               f"{c['choice_accuracy']:.2f} [{c['choice_accuracy_lo']:.2f}, {c['choice_accuracy_hi']:.2f}] | "
               f"{c['logprob']:.1f} [{c['logprob_lo']:.1f}, {c['logprob_hi']:.1f}] | {c['median_rank']:g} |")
        assert row in text, row
    assert f"{label}, {n} base examples (the file's first {n})" in text
    copied = int(rule["paper_kv"].mul(rule["n"]).sum())
    assert f"{copied} of {4 * n} prompts" in text
    contrasts = pd.read_csv(out / "contrasts.csv").set_index(["metric", "contrast"])
    best = contrasts.loc["best_logprob", "mean"].astype(int)
    assert best.sum() == n
    assert f"highest with the key at position {best.idxmax()} (in {best.max()} of the {n} examples" in text
    c = contrasts.loc[("choice_correct", "ends - middle")]
    assert f"ends minus middle, paired over examples: {c['mean']:+.2f} [{c['lo']:+.2f}, {c['hi']:+.2f}]" in text
    for name in ("49 - 0", "49 - 74"):
        c = contrasts.loc[("logprob", name)]
        assert f"{name.replace('-', 'minus')}, {c['mean']:+.1f} nats [{c['lo']:+.1f}, {c['hi']:+.1f}]" in text
    k = pd.read_csv(out / "answer_kinds.csv").sum()
    assert k["n"] == 4 * n
    assert (f"Of the {4 * n} greedy answers {k['empty']} are empty (a newline first), {k['the value']} the queried "
            f"value, {k['uuid in the prompt'] + k['uuid elsewhere']} other UUIDs ({k['uuid in the prompt']} another "
            f"key or value of the same prompt, {k['uuid elsewhere']} found nowhere in it") in text
    assert f"found nowhere in it) and {k['other']} numbers or fragments" in text or (
        f"one of them the value with one character wrong) and {k['other']} numbers or fragments" in text)


def test_the_readme_quotes_the_kv75_accuracy_of_both_models():
    import pandas as pd

    text = " ".join((ROOT / "README.md").read_text().split())
    smol = pd.read_csv(KV75 / "smollm2-135m" / "paper_rule.csv")
    gemma = pd.read_csv(KV75 / "gemma3-270m" / "paper_rule.csv").set_index("gold_position")
    n = int(gemma["n"].iloc[0])
    assert f"on the file's first {n} examples at each of the paper's four positions" in text
    assert smol["paper_kv"].sum() == 0 and f"SmolLM2 copies no value (0 of {smol['n'].sum()})" in text
    first, rest = gemma.loc[0], gemma.drop(index=0)
    assert rest["paper_kv"].sum() == 0
    assert (f"Gemma-3 copies {first['paper_kv']:.2f} [{first['paper_kv_lo']:.2f}, {first['paper_kv_hi']:.2f}] with the "
            f"key first and none elsewhere (0 of {rest['n'].sum()}") in text
