"""report.md and index.html: self-contained, every figure and claim beside its reproduce command."""

from __future__ import annotations

import base64
import json
import re

from interp import markdown
from interp.report.render import key_findings, render_report


def test_html_is_self_contained(built_report):
    page = (built_report / "index.html").read_text()
    assert not re.search(r"""src=["'](https?:)?//""", page), "index.html must not load anything remote"
    assert "<link" not in page and "<script src" not in page
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2  # one figure per enabled experiment
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for data in images)


def test_every_figure_and_section_has_its_reproduce_command(built_report):
    page = (built_report / "index.html").read_text()
    for caption in re.findall(r"<figcaption>(.*?)</figcaption>", page):
        assert re.search(r"Reproduce: <code>interp run (alpha|beta) --model tiny</code>", caption)
    assert "Reproduce the whole report: <code>interp report --model tiny</code>" in page
    md = (built_report / "report.md").read_text()
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (built_report / link).exists()
    findings = md.split("## Key findings")[1].split("\n## ")[0]
    claims = [line for line in findings.splitlines() if line.startswith("- ")]
    assert len(claims) == 4 and all("`interp run " in c for c in claims)  # both findings of alpha and beta
    assert "The mean residual norm is" in claims[0]  # read from findings.json, not parsed out of summary.md


def test_disabled_experiment_is_listed_with_its_reason(built_report):
    page = (built_report / "index.html").read_text()
    assert "waiting for its analysis" in page
    assert "waiting for its analysis" in (built_report / "report.md").read_text()


def test_viewer_data_embedded_and_escaped(built_report):
    page = (built_report / "index.html").read_text()
    blobs = re.findall(r'<script type="application/json" id="(viewer-data-\d+)">(.*?)</script>', page, re.S)
    assert len(blobs) == 2
    data = json.loads(blobs[0][1].replace("<\\/", "</"))
    assert data["heads"][0]["layer"] == 0 and len(data["tokens"]) == len(data["heads"][0]["pattern"])
    assert "w<" not in re.sub(r"<script.*?</script>", "", page, flags=re.S)  # tokens reach the page only as JSON


def test_tables_are_sortable_and_numeric(built_report):
    page = (built_report / "index.html").read_text()
    assert page.count('<table class="sortable">') >= 3  # two data tables + provenance
    assert re.search(r'<td class="num" data-v="[0-9.]+">', page)


def test_rerender_from_folder_alone(built_report):
    (built_report / "index.html").unlink()
    md, page = render_report(built_report)
    assert page.exists() and md.read_text().startswith("# interp report: tiny")


def test_markdown_subset():
    html = markdown.to_html("# Title\n\nSome **bold** and `a<b` and *it*.\n\n- one\n- two\n\n"
                            "| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<h3>Title</h3>" in html and "<strong>bold</strong>" in html and "<code>a&lt;b</code>" in html
    assert "<em>it</em>" in html and "<ul><li>one</li><li>two</li></ul>" in html
    assert '<table class="sortable"><thead><tr><th>a</th><th>b</th>' in html and "<td>1</td>" in html
    assert markdown.inline("snake_case_name stays") == "snake_case_name stays"
    assert markdown.to_html("<script>x</script>") == "<p>&lt;script&gt;x&lt;/script&gt;</p>"


def test_key_findings_follow_the_spec():
    found = [{"key": "a", "text": "A."}, {"key": "b", "text": "B."}]
    assert key_findings({"findings_data": found}) == found  # none named: all of them
    assert key_findings({"findings_data": found, "findings": ["b", "absent", "a"]}) == [found[1], found[0]]
    assert key_findings({"findings": ["a"]}) == []  # an entry without findings.json shows none
