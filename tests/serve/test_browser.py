"""The lab page as a person uses it, in headless Chromium (the report's DevTools-pipe client), on `interp serve`
over a tiny model: type a prompt, predict, look at attention, trace, apply an edit and see the prediction
change, undo it and see the prediction come back, with no console errors. It saves a screenshot of the page
(to INTERP_SERVE_SCREENSHOT when set: that is how docs/serve.png is made). Skipped, with the reason, only
where Chromium is not installed or cannot start.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from tests.report.test_browser import Browser, chromium_binary, console_errors
from tests.serve.served import export_tiny, serve_process


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, session=self.session)

    def js(self, expression: str):
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in reply["result"], reply["result"]
        return reply["result"]["result"].get("value")

    def wait_for(self, expression: str, what: str, tries: int = 1200):
        """Poll `expression` until truthy (bounded: `tries` polls 0.1 s apart); fail saying what was awaited."""
        for _ in range(tries):
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"the page never showed {what}; errors: {self.errors()}")

    def errors(self) -> list[str]:
        return [e for e in (self.js("Array.from(document.querySelectorAll('.error')).filter(e => !e.hidden)"
                                    ".map(e => e.textContent)") or [])]

    def type_into(self, element_id: str, text: str) -> None:
        """Focus a field, select what is in it, and type `text` as keyboard input."""
        self.js(f"(() => {{ const e = document.getElementById({json.dumps(element_id)}); e.focus(); e.select(); }})()")
        self.send("Input.insertText", {"text": text})

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the element."""
        x, y = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block: 'center'}});
                          const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def screenshot(self, path: Path) -> None:
        height = self.js("document.documentElement.scrollHeight")
        self.send("Emulation.setDeviceMetricsOverride", {"width": 1200, "height": height, "deviceScaleFactor": 1, "mobile": False})
        data = self.send("Page.captureScreenshot", {"format": "png"})["result"]["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        self.send("Emulation.setDeviceMetricsOverride", {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False})


@pytest.fixture
def page(tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed; run .ci/install-chromium.sh (Debian packages chromium, chromium-driver)")
    folder = export_tiny(tmp_path / "tiny")
    with serve_process(["--model", str(folder), "--port", "0", "--stats-tokens", "400"], tmp_path / "cache") as (url, _):
        try:
            browser = Browser(binary, tmp_path / "profile", timeout=120)
            target = browser.send("Target.createTarget", {"url": "about:blank"})["result"]["targetId"]
        except (OSError, RuntimeError, TimeoutError) as exc:
            pytest.skip(f"Chromium ({binary}) could not be started headless: {exc}")
        try:
            session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["result"]["sessionId"]
            p = Page(browser, session)
            for domain in ("Page", "Runtime", "Log"):
                p.send(f"{domain}.enable")
            p.send("Emulation.setDeviceMetricsOverride", {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False})
            p.send("Page.navigate", {"url": url})
            browser.wait_event("Page.loadEventFired")
            yield p
        finally:
            browser.close()


TOP = "document.querySelector('#topk tr .tok') && document.querySelector('#topk tr .tok').textContent"


def test_predict_edit_undo_in_the_page(page, tmp_path):
    p = page
    assert p.wait_for("document.getElementById('model-name').textContent === 'tiny-lab'", "the model's name")
    # ask: type a prompt and predict
    p.type_into("prompt", "The famous tower in Paris")
    p.click("#predict")
    before = p.wait_for(f"!document.getElementById('predict-out').hidden && ({TOP})", "the predictions")
    assert before != "Rome" and p.errors() == []
    assert p.js("document.querySelectorAll('#lens tbody tr').length") == 4  # the logit lens: one row per layer
    # attention: the report's viewer on the prompt; hovering a token shows where the head looks
    p.click("#attention")
    p.wait_for("document.querySelectorAll('#att-out .viewer .tok').length === 6", "the attention viewer")
    assert p.js("document.querySelectorAll('#att-out .heads button').length") == 4
    x, y = p.js("""(() => { const t = Array.from(document.querySelectorAll('#att-out .tok')).pop();
                   const r = t.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()""")
    p.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
    assert "attends to" in p.js("document.querySelector('#att-out .tooltip').textContent")
    # a causal trace with its progress
    p.type_into("trace-prompt", "The famous tower in {}")
    p.type_into("trace-subject", "Paris")
    p.type_into("trace-samples", "3")
    p.click("#trace")
    p.wait_for("!document.getElementById('trace-out').hidden && document.querySelectorAll('#trace-figures img').length === 3",
               "the trace heatmaps")
    assert p.js("Array.from(document.querySelectorAll('#trace-figures img')).every(i => i.complete && i.naturalWidth > 0)")
    assert console_errors(p.browser) == []
    # a bad edit: one sentence in the page (Chromium logs the 400 answer as a failed resource; nothing else)
    p.type_into("edit-prompt", "The famous tower in Paris")
    p.type_into("edit-subject", "Paris")
    p.type_into("edit-target", "Rome")
    p.click("#apply-edit")
    message = p.wait_for("!document.getElementById('edit-error').hidden && document.getElementById('edit-error').textContent",
                         "the edit's error")
    assert "no '{}'" in message and "\n" not in message
    assert [e for e in console_errors(p.browser) if "status of 400" not in e] == []
    n_expected = len(console_errors(p.browser))
    # apply an edit: the prediction changes to the new answer
    p.type_into("edit-prompt", "The famous tower in {}")
    p.type_into("edit-layers", "2")
    p.type_into("edit-paraphrase", "It was red . The famous tower in Paris")
    p.type_into("edit-neighbour", "The famous tower in London")
    p.click("#apply-edit")
    p.wait_for("!document.getElementById('edit-out').hidden", "the edit's before/after table")
    assert p.wait_for(f"({TOP}) === 'Rome'", "the edited prediction")
    assert p.js("document.querySelectorAll('#edit-probes tbody tr').length") == 3
    assert p.js("document.querySelectorAll('#edits-table tbody tr').length") == 1
    assert p.js("document.getElementById('edit-error').hidden")
    shot = tmp_path / "serve.png"
    p.screenshot(shot)
    assert shot.stat().st_size > 10_000
    if os.environ.get("INTERP_SERVE_SCREENSHOT"):
        p.screenshot(Path(os.environ["INTERP_SERVE_SCREENSHOT"]))
    # undo: the original prediction is back
    p.click("#edits-table button[data-edit]")
    p.wait_for("document.getElementById('edits-table').hidden", "the empty edit list")
    assert p.wait_for(f"({TOP}) === {json.dumps(before)}", "the original prediction")
    assert p.errors() == []
    assert len(console_errors(p.browser)) == n_expected  # no console error since the deliberate bad request
