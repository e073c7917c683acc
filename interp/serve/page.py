"""The page of `interp serve`: one HTML document, its style and its script, all served by the same process
(no CDN: it works offline). The three live beside this module in static/ (page.html, page.css, page.js), so
each is read and linted as what it is. The report's style and attention viewer (`interp.report.assets`) are
included as they are; the page's own script calls the JSON API and renders every value from the user, the
model or a file with textContent, never as markup (the Content-Security-Policy also forbids inline script).
"""

from __future__ import annotations

from importlib.resources import files

from interp.report.assets import CSS as REPORT_CSS, JS as REPORT_JS


def _static(name: str) -> str:
    return files("interp.serve").joinpath("static", name).read_text(encoding="utf-8")


HTML = _static("page.html")
PAGE_CSS = _static("page.css")
PAGE_JS = _static("page.js")


def style() -> str:
    return REPORT_CSS + "\n" + PAGE_CSS


def script() -> str:
    return REPORT_JS + "\n" + PAGE_JS
