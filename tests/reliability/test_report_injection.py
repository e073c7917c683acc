"""Nothing injected: a report built from text full of payloads runs no script in Chromium and still renders
every section; the Markdown renderer and the <script> JSON are safe by construction; specs may name only
interp's code and safe names (issue #15, items 1 and 2)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from reliability_helpers import write_spec

from interp.errors import DataFormatError, InterpError
from interp.report.pipeline import make_report
from interp.report.specs import import_object, load_specs, parse_spec

PAYLOADS = [
    '</script><script>window.__pwned = 1</script>',
    '<!--<script>',
    '[m](x"autofocus/onfocus="window.__pwned=2)',
    '[click](javascript:window.__pwned=3)',
    '<img src=x onerror="window.__pwned=4">',
    '`</code><script>window.__pwned=5</script>`',
    "<svg onload=window.__pwned=6>",
    "' onmouseover='window.__pwned=7' \" onmouseover=\"window.__pwned=8\"",
    "[x](JaVaScRiPt:window.__pwned=9) [y](data:text/html,<script>window.__pwned=10</script>)",
]
TEXT = " ".join(PAYLOADS)


def toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


@pytest.fixture
def payload_report(tmp_path, tiny, cache_env) -> Path:
    specs = tmp_path / "experiments"
    write_spec(specs, "first", 10, params=f"text = {toml_string(TEXT)}", title=toml_string("Title " + PAYLOADS[0]),
               description=toml_string("Described: " + TEXT))
    write_spec(specs, "second", 20, params='text = "</script>"', title=toml_string(PAYLOADS[4]))
    write_spec(specs, "broken", 30, params="fail = true")
    out = tmp_path / "reports" / "tiny"
    make_report(tiny, "tiny", load_specs(specs), out, progress=False, echo=lambda s: None,
                command="interp report --model tiny " + PAYLOADS[2])
    return out


def test_markdown_links_and_text_are_safe():
    from interp.markdown import escape, inline, safe_url, to_html

    assert safe_url("https://example.org/a?b=1") and safe_url("#section") and safe_url("figures/a.png")
    for bad in ("javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:x", "data:text/html,x", "vbscript:x",
                "//evil.example", "\\\\evil"):
        assert safe_url(bad) is None, bad
    html = inline('[m](x"autofocus/onfocus="alert(1)) and [j](javascript:alert(1))')
    assert "<a " not in html and "[m](x&quot;autofocus" in html  # shown as the text it is
    assert inline("[ok](https://example.org/a_b)") == '<a href="https://example.org/a_b">ok</a>'
    page = to_html("# T <b>\n\n| a | b |\n|---|---|\n| <i>x</i> | `</code>` |\n\n```\n</pre><script>\n```")
    assert "<b>" not in page and "<i>" not in page and "<script>" not in page
    assert to_html(escape("**bold** [a](https://x) <b>")) == "<p>**bold** [a](https://x) &lt;b&gt;</p>"


def test_script_json_cannot_end_the_script_element():
    from interp.report.render import script_json

    data = {"tokens": ["</script>", "<!--<script>", "a & b", "]]>"]}
    text = script_json(data)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == data


def test_report_html_has_no_payload_markup(payload_report):
    page = (payload_report / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts == ['<script type="application/json" id="viewer-data-0">',
                       '<script type="application/json" id="viewer-data-1">', "<script>"]
    assert "window.__pwned" not in "".join(re.findall(r"<[^>]*>", page))  # only ever in text, never in a tag
    assert not re.search(r"""<[^>]+\son\w+\s*=""", page)
    assert not re.search(r"""href\s*=\s*["']?\s*(javascript|data|vbscript):""", page, re.I)


def chromium_client():
    """The DevTools client of tests/report/test_browser.py (loaded by path; it is not a package)."""
    path = Path(__file__).resolve().parents[1] / "report" / "test_browser.py"
    spec = importlib.util.spec_from_file_location("_report_browser_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # a browser: make test runs it, make test-fast does not
def test_payload_report_runs_no_script_in_chromium(payload_report, tmp_path):
    client = chromium_client()
    with client.open_page(tmp_path, (payload_report / "index.html").as_uri()) as (browser, js, _):
        # give focus- and load-triggered handlers their chance, then hover and focus everything
        js("document.querySelectorAll('a, [tabindex], input, img, svg')"
           ".forEach(e => { try { e.focus(); } catch (x) {} })")
        js("new Promise(r => setTimeout(r, 300))")
        assert js("typeof window.__pwned") == "undefined"
        assert js("Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes)"
                  ".some(a => a.name.startsWith('on'))).length") == 0
        assert js("Array.from(document.querySelectorAll('a'))"
                  ".filter(a => !/^(https?:|#|file:)/.test(a.href)).length") == 0
        assert js("document.querySelectorAll('script:not([type])').length") == 1  # only the page's own code
        # every section is there and renders
        ids = js("Array.from(document.querySelectorAll('section')).map(s => s.id)")
        assert ids[:1] == ["findings"] and {"first", "second", "broken", "provenance"} <= set(ids)
        assert js("document.querySelector('#first h2').textContent").startswith("Title </script><script>")
        assert "Described: </script>" in js("document.querySelector('#first').textContent")
        images = js("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        assert len(images) == 2 and all(ok and w > 0 for ok, w in images)
        tokens = js("Array.from(document.querySelectorAll('#first .viewer .tok')).map(t => t.textContent)")
        assert tokens[:3] == [TEXT, "</script>", "<!--<script>"]
        assert "fake analysis failed on purpose" in js("document.querySelector('#broken').textContent")
        errors = client.console_errors(browser)
        assert errors == [], errors


# -- experiment specs name only interp's code, with safe names ------------------------------------------------
def _spec(tmp_path, name: str, analysis: str, extra: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\ntitle = "t"\nanalysis = "{analysis}"\n{extra}')
    return path


@pytest.mark.parametrize("analysis", ["os:system", "subprocess:run", "builtins:eval", "reliability_fake.os:system"])
def test_specs_may_not_name_code_outside_interp(tmp_path, monkeypatch, analysis):
    monkeypatch.delenv("INTERP_SPEC_MODULES")
    with pytest.raises(DataFormatError, match="not part of interp"):
        parse_spec(_spec(tmp_path, "x", analysis))
    with pytest.raises(InterpError, match="not part of interp"):
        import_object(analysis)


def test_spec_params_class_and_loaders_are_checked_too(tmp_path, monkeypatch):
    monkeypatch.delenv("INTERP_SPEC_MODULES")
    good = "interp.analysis.overview:run_overview"
    with pytest.raises(DataFormatError, match="params_class"):
        parse_spec(_spec(tmp_path, "x", good, 'params_class = "os:system"\n'))
    with pytest.raises(DataFormatError, match="loader"):
        parse_spec(_spec(tmp_path, "y", good, '[inputs.a]\nloader = "pickle:load"\npath = "a.pkl"\n'))
    assert parse_spec(_spec(tmp_path, "z", good)).analysis == good


@pytest.mark.parametrize("name", ["..", ".", "a b", "x.y", "-", "é"])
def test_spec_names_are_plain(tmp_path, name):
    """A spec in '...toml' is named '..' (its stem): as a folder name it would be the report's parent."""
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\ntitle = "t"\nanalysis = "interp.analysis.overview:run_overview"\n')
    if name == "-":  # a plain name is fine
        assert parse_spec(path).name == "-"
        return
    with pytest.raises(DataFormatError, match="field 'name'"):
        parse_spec(path)


def test_a_report_never_removes_what_interp_did_not_write(tmp_path, tiny, cache_env):
    specs = tmp_path / "experiments"
    write_spec(specs, "alpha", 10)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "alpha").mkdir()
    (out / "alpha" / "thesis.txt").write_text("years of work")
    # even told to write into a folder that is not a report (--force), interp's own names are not taken over
    with pytest.raises(InterpError, match="not written by interp"):
        make_report(tiny, "tiny", load_specs(specs), out, progress=False, echo=lambda s: None, overwrite=True)
    assert (out / "alpha" / "thesis.txt").read_text() == "years of work"
    # and a report folder is refreshed in place: its own experiment folders are replaced, nothing else
    report = tmp_path / "report"
    make_report(tiny, "tiny", load_specs(specs), report, progress=False, echo=lambda s: None)
    (report / "notes.txt").write_text("mine")
    make_report(tiny, "tiny", load_specs(specs), report, progress=False, echo=lambda s: None)
    assert (report / "notes.txt").read_text() == "mine"
    assert not [p.name for p in report.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_analysis_summaries_show_data_as_text():
    """A target, case id or relation from a fact file that looks like Markdown is shown as written: no
    emphasis, no link, no code span."""

    from interp.analysis.facts.neurons import FactNeurons
    from interp.analysis.facts.params import NeuronParams
    from interp.analysis.facts.run import neuron_result
    from interp.markdown import to_html

    payload = "**bold** _it_ [l](https://x) `code`"
    fact = FactNeurons(payload, ["p1", "p2", "p3"], payload, 0, [(1, 2, 0.5)], [1, 1, 1],
                       [{"p": 0.7, "mean_count": 1.0}], relation=payload)
    result = neuron_result("tiny", 2, NeuronParams(), 0.0, [fact], [])
    html = to_html(result.summary_markdown())
    assert "<strong>" not in html and "<em>" not in html and "<a " not in html and "<code>" not in html
    # relation (its effects table and its p rounds), case id and target, as written
    assert html.count("**bold** _it_ [l](https://x) `code`") == 4
