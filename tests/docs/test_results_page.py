"""docs/results.md against the committed reports: the page is what docs/scripts/results_page.py writes from
them, each finding on it is the sentence its cited findings.json holds, and the hand-written readings carry
no measured number (so none can drift from the files)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "scripts"))

import results_page  # noqa: E402

PAGE = ROOT / "docs" / "results.md"
CITE = re.compile(r"\(\[findings\]\((\.\./reports/[^)]+/findings\.json)\)\)")
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")
# what a reading may name with digits in it: papers' years and models, never a measurement
NAMED = re.compile(r"\b(?:19|20)\d\d\b|GPT-2 XL|GPT-2|GPT-J|Llama-2-7B")


def _blocks(text: str) -> list[tuple[Path, list[str]]]:
    """(cited findings file, the bullets under the citation) for every model block of the page."""
    blocks, current = [], None
    for line in text.splitlines():
        cite = CITE.search(line)
        if cite:
            current = (PAGE.parent / cite.group(1)).resolve(), []
            blocks.append(current)
        elif line.startswith("#"):
            current = None
        elif line.startswith("- ") and current is not None:
            current[1].append(line[2:])
    return blocks


def test_page_is_generated_from_the_committed_reports():
    if PAGE.read_text() != results_page.page():
        pytest.fail("docs/results.md differs from the reports: run .venv/bin/python docs/scripts/results_page.py")


def test_every_finding_is_the_sentence_of_the_file_it_cites():
    blocks = _blocks(PAGE.read_text())
    assert len(blocks) >= 2 * 8, "both models' experiments are on the page"
    for path, bullets in blocks:
        assert path.is_file(), path
        texts = [f["text"] for f in json.loads(path.read_text())]
        # every finding, in the file's order, word for word: each number on the page is the file's
        assert bullets == texts, path


def test_readings_carry_no_measured_number():
    for name, (_, reading) in results_page.READING.items():
        assert not NUMBER.search(NAMED.sub("", reading)), f"{name}: a number in hand-written prose"


def test_figures_on_the_page_exist():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", PAGE.read_text())
    assert len(images) >= 10
    for image in images:
        assert (PAGE.parent / image).resolve().is_file(), image


def test_a_changed_finding_makes_the_page_stale(tmp_path, monkeypatch):
    # the drift check can fail: a report whose finding changed no longer matches the committed page
    fake = tmp_path / "reports"
    for model in results_page.MODELS:
        src = ROOT / "reports" / model
        (fake / model).mkdir(parents=True)
        (fake / model / "manifest.json").write_text((src / "manifest.json").read_text())
        for findings in src.glob("*/findings.json"):
            (fake / model / findings.parent.name).mkdir()
            (fake / model / findings.parent.name / "findings.json").write_text(findings.read_text())
    target = fake / "smollm2-135m" / "induction" / "findings.json"
    changed = json.loads(target.read_text())
    changed[0]["text"] = changed[0]["text"].replace("0.88", "0.99")
    target.write_text(json.dumps(changed))
    monkeypatch.setattr(results_page, "REPORTS", fake)
    assert results_page.page() != PAGE.read_text()
