"""`interp serve` from the command line: it starts, prints its address, serves; bad options are one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.serve.served import ROOT, export_tiny, serve_process


def _interp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def _one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("Loading")]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_serve_refuses_other_hosts_without_a_token():
    _one_line_error(_interp("serve", "--host", "0.0.0.0"), "--token")


def test_serve_refuses_a_bad_or_missing_device():
    _one_line_error(_interp("serve", "--device", "quantum", "--port", "0"), "Unknown --device 'quantum'")
    import torch

    if not torch.cuda.is_available():
        _one_line_error(_interp("serve", "--device", "cuda", "--port", "0"), "needs CUDA")


def test_serve_refuses_a_port_in_use():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        _one_line_error(_interp("serve", "--port", str(port)), f"Port {port}", "already in use")


def test_serve_refuses_an_unknown_model_in_one_line():
    _one_line_error(_interp("serve", "--model", "no-such-model", "--port", "0"), "no-such-model")


@pytest.mark.slow  # a real server process
def test_serve_starts_prints_its_url_and_answers(tmp_path):
    folder = export_tiny(tmp_path / "tiny")
    with serve_process(["--model", str(folder), "--port", "0", "--dtype", "float32", "--device", "cpu"],
                       tmp_path / "cache") as (url, _):
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        with urllib.request.urlopen(url + "api/model", timeout=60) as r:
            info = json.load(r)
        assert info["model"] == "tiny-lab" and info["device"] == "cpu" and info["token_required"] is False
        with urllib.request.urlopen(url, timeout=60) as r:
            assert "interp lab" in r.read().decode()
        req = urllib.request.Request(url + "api/predict",
                                     data=json.dumps({"prompt": "The famous tower in Paris"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert json.load(r)["tokens"][:3] == ["[BOS]", "The", "famous"]


@pytest.mark.slow  # a real server process
def test_serve_with_a_token_prints_it_in_the_url_and_requires_it(tmp_path):
    folder = export_tiny(tmp_path / "tiny")
    with serve_process(["--model", str(folder), "--port", "0", "--token", "correct-horse"],
                       tmp_path / "cache") as (url, _):
        assert url.endswith("/#token=correct-horse")
        base = url.split("#")[0]
        try:
            urllib.request.urlopen(base + "api/model", timeout=60)
            raise AssertionError("expected 401")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401 and "token" in json.load(exc)["error"]
        req = urllib.request.Request(base + "api/model", headers={"Authorization": "Bearer correct-horse"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert json.load(r)["token_required"] is True
