"""index.html as a person sees it: headless Chromium, driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe`` (DevTools messages as NUL-terminated JSON on file
descriptors 3 and 4), so the client is a few lines of standard library. The test checks that the page
raises no console errors, that every figure has loaded image data, that hovering a token of the attention
viewer (a real mouse move) shows a token and a weight, and that clicking a table header sorts the table.
Skipped, with the reason, only where Chromium is not installed (`.ci/install-chromium.sh` installs it) or
cannot start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a browser: make test runs it, make test-fast does not

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """A minimal DevTools client over Chromium's debugging pipe."""

    def __init__(self, binary: str, profile: Path, timeout: float = 30.0):
        to_child_r, self._w = os.pipe()  # we write commands; Chromium reads them on fd 3
        self._r, from_child_w = os.pipe()  # Chromium writes replies and events on fd 4

        def wire_fds() -> None:  # runs in the child before exec
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        # the child's copies of our ends must not sit on fds 3/4 before dup2: move them high first
        to_child_r, from_child_w = _high(to_child_r), _high(from_child_w)
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     pass_fds=(3, 4), preexec_fn=wire_fds)
        os.close(to_child_r)
        os.close(from_child_w)
        self.timeout, self._next, self._buf, self.events = timeout, 0, b"", []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        return self._wait(lambda m: m.get("id") == self._next, method)

    def wait_event(self, method: str) -> dict:
        for m in self.events:
            if m.get("method") == method:
                return m
        return self._wait(lambda m: m.get("method") == method, method)

    def _wait(self, done, what: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "method" in msg:
                    self.events.append(msg)
                if done(msg):
                    if "error" in msg:
                        raise RuntimeError(f"{what}: {msg['error']}")
                    return msg
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise TimeoutError(f"no answer from Chromium to {what}")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe waiting for {what}")
                self._buf += chunk

    def close(self) -> None:
        try:
            os.write(self._w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - closing best-effort, then make sure it is gone
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._w)
            os.close(self._r)


def _high(fd: int) -> int:
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    os.set_inheritable(new, True)
    return new


@contextlib.contextmanager
def open_page(tmp_path: Path, url: str, viewport: dict | None = None):
    """Headless Chromium showing `url` (skips the test where Chromium is missing or cannot start): yields the
    browser, a `js(expression)` that returns the value, and the page's session."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed; run .ci/install-chromium.sh "
                    "(Debian packages chromium, chromium-driver)")
    try:
        browser = Browser(binary, tmp_path / "profile")
        target = browser.send("Target.createTarget", {"url": "about:blank"})["result"]["targetId"]
    except (OSError, RuntimeError, TimeoutError) as exc:
        pytest.skip(f"Chromium ({binary}) could not be started headless: {exc}")
    try:
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["result"]["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        if viewport:
            browser.send("Emulation.setDeviceMetricsOverride", viewport, session=session)
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_event("Page.loadEventFired")

        def js(expression: str):
            reply = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
            assert "exceptionDetails" not in reply["result"], reply["result"]
            return reply["result"]["result"].get("value")

        yield browser, js, session
    finally:
        browser.close()


@pytest.fixture
def page(tmp_path, built_report):
    viewport = {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    with open_page(tmp_path, (built_report / "index.html").as_uri(), viewport) as (browser, js, session):

        def mouse_move(x: float, y: float) -> None:
            browser.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y}, session=session)

        yield browser, js, mouse_move


def console_errors(browser: Browser) -> list[str]:
    errors = []
    for m in browser.events:
        p = m.get("params", {})
        if m["method"] == "Runtime.exceptionThrown":
            errors.append(json.dumps(p.get("exceptionDetails", {}))[:300])
        elif m["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append(json.dumps(p.get("args", []))[:300])
        elif m["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            errors.append(p["entry"].get("text", "")[:300])
    return errors


def test_page_figures_viewer_and_sorting_work_in_chromium(page):
    browser, js, mouse_move = page
    assert js("document.title") == "interp report: tiny"
    # figures: every <img> decoded real pixels
    images = js("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(images) == 2 and all(ok and w > 0 and h > 0 for ok, w, h in images)
    # the viewer: move the mouse onto the last token of the first viewer
    rect = js("""(() => { const s = document.querySelectorAll('.viewer')[0].querySelectorAll('.tok');
                 const t = s[s.length - 1]; t.scrollIntoView({block: 'center'});
                 const r = t.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2, s.length]; })()""")
    assert rect[2] == 8
    assert js("document.querySelector('.viewer .tooltip').hidden") is True
    mouse_move(rect[0], rect[1])
    tip = js("(() => { const t = document.querySelector('.viewer .tooltip'); return [t.hidden, t.textContent]; })()")
    assert tip[0] is False
    assert re.search(r'^L0H0: query "t\d+" \(position 7\) attends to', tip[1]), tip[1]  # head and hovered token
    assert re.search(r'"(t\d+| w<\d+>)" \(position \d\): [01]\.\d{3}', tip[1]), tip[1]  # a key token and its weight
    shaded = js("Array.from(document.querySelectorAll('.viewer')[0].querySelectorAll('.tok'))"
                ".filter(s => s.style.background).length")
    assert shaded == 8  # the hovered token and every earlier one carry a weight
    mouse_move(5, 5)
    assert js("document.querySelector('.viewer .tooltip').hidden") is True
    # sorting: click the 'value' header of the first data table twice -> descending
    js("document.querySelectorAll('details')[0].open = true")
    column = """Array.from(document.querySelectorAll('details')[0].querySelectorAll('tbody tr'))
                .map(r => parseFloat(r.cells[1].getAttribute('data-v')))"""
    js("document.querySelectorAll('details')[0].querySelectorAll('th')[1].click()")
    values = js(column)
    assert values == sorted(values)
    js("document.querySelectorAll('details')[0].querySelectorAll('th')[1].click()")
    assert js(column) == sorted(values, reverse=True)
    assert console_errors(browser) == []
