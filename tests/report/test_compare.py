"""`interp report --model a,b`'s comparison page: both models' key figures side by side, from the folders."""

from __future__ import annotations

import json

from interp.report.compare import write_comparison
from interp.report.pipeline import make_report
from interp.report.specs import load_specs
from tests.tiny import tiny_model


def test_comparison_page_puts_both_models_side_by_side(tmp_path, spec_dir, cache_env):
    specs = load_specs(spec_dir)
    root = tmp_path / "reports"
    folders = []
    for name, seed in (("tiny-a", 0), ("tiny-b", 1)):
        outcome = make_report(tiny_model("llama", seed), name, specs, root / name, progress=False, echo=lambda s: None)
        folders.append(outcome.folder)
    md, page = write_comparison(root, folders)
    text, markdown = page.read_text(), md.read_text()
    assert page.parent == root and md.parent == root
    values = [json.loads((f / "alpha" / "findings.json").read_text())[0]["value"] for f in folders]
    assert values[0] != values[1]  # two different models: the row must show two different numbers
    row = next(line for line in markdown.splitlines() if line.startswith("| mean_norm |"))
    assert row == f"| mean_norm | norm | {values[0]:.3g} | {values[1]:.3g} |"
    assert 'href="tiny-a/index.html"' in text and 'href="tiny-b/index.html"' in text
    assert text.count("data:image/png;base64,") == 4  # alpha and beta: one figure per model each
    assert "Fake analysis gamma" in text and "disabled" in text  # the disabled experiment is listed as such
