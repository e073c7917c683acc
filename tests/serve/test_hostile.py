"""Issue 33's attacks on the lab, each answered by the app itself: a one-sentence 4xx and no change to the model.

Two rows only broke on older framework versions than the installed ones; their tests put the old behaviour
back (FastAPI's lax Content-Type of < 0.132, Starlette's Host-built URL of < 1.0) and check that the app's
own guard still refuses.
"""

from __future__ import annotations

import functools
import json
import tracemalloc

import pytest
import torch

from interp.errors import InterpError
from interp.serve.lab import Limits
from tests.serve.test_api import EDIT, JSON, PROMPT, one_sentence


def unchanged(lab, original: dict) -> bool:
    return not lab.edits and all(torch.equal(v, original[k]) for k, v in lab.model.state_dict().items())


@pytest.fixture
def lax_fastapi(monkeypatch):
    """FastAPI as before 0.132: a JSON body is parsed whatever its Content-Type says (or if it says none)."""
    import fastapi

    import interp.serve.app as app_module

    monkeypatch.setattr(app_module, "FastAPI", functools.partial(fastapi.FastAPI, strict_content_type=False))


def test_row1_a_no_cors_blob_without_content_type_cannot_edit(lab, lax_fastapi):
    from fastapi.testclient import TestClient

    from interp.serve import create_app

    original = {k: v.clone() for k, v in lab.model.state_dict().items()}
    with TestClient(create_app(lab)) as c:
        # fetch(url, {mode: "no-cors", body: new Blob([json])}): no Content-Type, no preflight
        one_sentence(c.post("/api/edits", content=json.dumps(EDIT).encode()), 415, "Content-Type: application/json")
        one_sentence(c.post("/api/edits", content=json.dumps(EDIT).encode(), headers={"content-type": "text/plain"}),
                     415, "application/json")
        one_sentence(c.post("/api/predict", content=json.dumps({"prompt": PROMPT}).encode()), 415, "application/json")
        assert unchanged(lab, original)
        assert c.post("/api/edits", json=EDIT).status_code == 200  # the page's own call still works
        edit_id = lab.edits[0].id
        one_sentence(c.delete(f"/api/edits/{edit_id}"), 415, "application/json")  # DELETE says JSON too
        assert len(lab.edits) == 1
        assert c.delete(f"/api/edits/{edit_id}", headers=JSON).status_code == 200


@pytest.mark.parametrize("headers", [{"origin": "https://attacker.example"}, {"origin": "null"},
                                     {"origin": "http://127.0.0.1:9999"}, {"sec-fetch-site": "cross-site"},
                                     {"sec-fetch-site": "same-site"}])
def test_a_foreign_origin_is_refused_whatever_it_sends(client, lab, headers):
    original = {k: v.clone() for k, v in lab.model.state_dict().items()}
    one_sentence(client.post("/api/edits", json=EDIT, headers=headers), 403, "other sites")
    one_sentence(client.get("/api/edits", headers=headers), 403, "other sites")
    assert unchanged(lab, original)
    assert client.get("/", headers=headers).status_code == 200  # the page (no data) may be opened from a link


def test_the_pages_own_origin_is_answered(lab):
    from fastapi.testclient import TestClient

    from interp.serve import create_app

    with TestClient(create_app(lab), base_url="http://127.0.0.1:8765") as c:
        same = {"origin": "http://127.0.0.1:8765", "sec-fetch-site": "same-origin"}
        assert c.post("/api/predict", json={"prompt": PROMPT}, headers=same).status_code == 200


@pytest.fixture
def host_built_url(monkeypatch):
    """Starlette < 1.0: request.url was built from the Host header, so "Host: a#" made its path empty."""
    from starlette.datastructures import URL
    from starlette.requests import HTTPConnection

    def url(self):
        host = dict(self.scope["headers"]).get(b"host", b"").decode("latin-1")
        return URL(f"{self.scope.get('scheme', 'http')}://{host}{self.scope['path']}")

    monkeypatch.setattr(HTTPConnection, "url", property(url))


def test_row2_a_host_header_cannot_hide_the_path_from_the_token_check(lab, host_built_url):
    from fastapi.testclient import TestClient

    from interp.serve import create_app

    original = {k: v.clone() for k, v in lab.model.state_dict().items()}
    with TestClient(create_app(lab, token="a-long-secret-token")) as c:
        for host in ("a#", "a?", "a/b"):
            one_sentence(c.post("/api/edits", json=EDIT, headers={"host": host}), 401, "needs its token")
            one_sentence(c.get("/api/edits", headers={"host": host}), 401, "needs its token")
        one_sentence(c.get("//api/edits"), 401, "needs its token")  # every path but the page's files needs it
    assert unchanged(lab, original)


def test_row3_the_subject_is_not_put_in_before_the_sizes_are_checked(lab):
    """Both texts fit alone; with the subject in each {} the prompt would be 4.5 million characters."""
    prompt, subject = "{}" * 1500, "x" * 3000
    with pytest.raises(InterpError):
        lab.trace("The {} is", "")  # imports what a trace needs, so the measurement below sees only the request
    tracemalloc.start()
    try:
        with pytest.raises(Exception) as caught:
            lab.trace(prompt, subject)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert type(caught.value).__name__ == "TooLargeError" and "in place of {}" in str(caught.value)
    assert peak < 1_000_000, peak  # the expanded prompt alone would be 4.5 MB
    with pytest.raises(Exception, match="in place of"):
        lab.apply_edit("{}" * 5000, "x" * 10000, "Rome")


def test_row3_through_the_api(client):
    one_sentence(client.post("/api/trace", json={"prompt": "{}" * 1500, "subject": "x" * 3000}), 413, "in place of {}")
    r = client.post("/api/trace", json={"prompt": "{}" * 250000, "subject": "x" * 4000})
    one_sentence(r, r.status_code, "at most")
    assert r.status_code in (413, 422)  # the schema's bound on a field (422) or the lab's (413)


def test_row4_every_answer_has_a_bound_and_a_task_a_time_limit(client, lab):
    long_target = " ".join(["Paris"] * 40)  # 40 tokens: over max_target_tokens (16)
    one_sentence(client.post("/api/trace", json={"prompt": "The {} is in", "subject": "Louvre", "target": long_target}),
                 413, "longer than 16 tokens")
    one_sentence(client.post("/api/edits", json=EDIT | {"target": long_target}), 413, "longer than 16 tokens")
    huge = {"prompt": "The {} is in", "subject": "Louvre", "target": "x" * 1_200_000}
    one_sentence(client.post("/api/trace", json=huge), 413, "at most 1,048,576 bytes")
    one_sentence(client.post("/api/trace", json={"prompt": "The {} is in", "subject": "Louvre", "target": "y" * 5000}),
                 413, "at most 16 tokens")
    assert not lab.edits


def test_row4_a_task_past_its_time_limit_stops_and_frees_the_model(lab):
    from fastapi.testclient import TestClient

    from interp.serve import create_app

    lab.limits = Limits(max_task_seconds=0)  # every long task is past its limit at its first step
    with TestClient(create_app(lab)) as c:
        one_sentence(c.post("/api/trace", json={"prompt": "The {} is in", "subject": "Louvre", "samples": 2}), 413,
                     "limit of 0 s per task")
        one_sentence(c.post("/api/edits", json=EDIT), 413, "limit of 0 s per task")
        assert c.get("/api/progress").json()["busy"] is False
        assert c.post("/api/predict", json={"prompt": PROMPT}).status_code == 200  # quick calls have no deadline
    assert not lab.edits


SURROGATE_BODIES = [
    ("/api/predict", {"prompt": "The city \ud800"}),
    ("/api/attention", {"prompt": "\udfff", "layer": 0}),
    ("/api/trace", {"prompt": "The {} is in", "subject": "Louvre\ud800"}),
    ("/api/trace", {"prompt": "The {} is in", "subject": "Louvre", "target": "\ud800"}),
    ("/api/edits", EDIT | {"target": "Rome\ud800"}),
    ("/api/edits", EDIT | {"neighbour": "\ud800"}),
]


@pytest.mark.parametrize("path,body", SURROGATE_BODIES)
def test_row7_a_lone_surrogate_in_a_request_is_one_sentence(client, lab, path, body):
    # sent as the browser's JSON.stringify sends it: the escape \ud800, which JSON parsers read back as is
    r = client.post(path, content=json.dumps(body).encode(), headers=JSON)
    one_sentence(r, r.status_code, "unicode")
    assert r.status_code in (400, 422)  # the schema (pydantic >= 2.x refuses it) or, below that, the lab
    assert not lab.edits


@pytest.mark.parametrize("call", [
    lambda lab: lab.predict("The city \ud800"),
    lambda lab: lab.attention("\udfff", 0),
    lambda lab: lab.trace("The {} is in", "Louvre\ud800"),
    lambda lab: lab.trace("The {} is in", "Louvre", target="\ud800"),
    lambda lab: lab.apply_edit("The famous tower in {}", "Paris", "Rome\ud800"),
    lambda lab: lab.apply_edit("The famous tower in {}", "Paris", "Rome", neighbour="\ud800"),
])
def test_row7_the_lab_itself_refuses_a_lone_surrogate(lab, call):
    from interp.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        call(lab)
    assert not lab.edits


def _with_target(data: bytes, old: str, new: str) -> bytes:
    """An edit file (safetensors) whose metadata has `old` replaced by `new` (JSON text)."""
    import struct

    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header["__metadata__"]["interp_edit"] = header["__metadata__"]["interp_edit"].replace(old, new)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[8 + n:]


def test_row7_an_edit_file_with_a_lone_surrogate_is_refused_before_it_is_applied(client, lab):
    original = {k: v.clone() for k, v in lab.model.state_dict().items()}
    edit_id = client.post("/api/edits", json=EDIT).json()["edit"]["id"]
    data = client.get(f"/api/edits/{edit_id}/file").content
    assert client.delete(f"/api/edits/{edit_id}", headers=JSON).status_code == 200
    octet = {"content-type": "application/octet-stream"}
    one_sentence(client.post("/api/edits/file", content=_with_target(data, '"Rome"', '"Rome\\ud800"'), headers=octet),
                 400, "not valid Unicode")
    one_sentence(client.post("/api/edits/file", content=_with_target(data, '"Rome"', '"' + "Rome " * 5000 + '"'),
                             headers=octet), 413, "target")
    assert unchanged(lab, original)
    assert client.post("/api/edits/file", content=data, headers=octet).status_code == 200  # the file as saved


def test_json_bodies_have_a_size_limit_even_when_streamed(lab):
    from fastapi.testclient import TestClient

    from interp.serve import create_app

    lab.limits = Limits(max_json_bytes=1000)
    with TestClient(create_app(lab)) as c:
        one_sentence(c.post("/api/predict", json={"prompt": "x" * 2000}), 413, "at most 1,000 bytes")

        def chunks():  # no Content-Length: the limit holds while reading
            for _ in range(10):
                yield b" " * 300

        one_sentence(c.post("/api/predict", content=chunks(), headers=JSON), 413, "over 1,000 bytes")
        assert c.post("/api/predict", json={"prompt": PROMPT}).status_code == 200


def test_requests_past_the_memory_estimate_are_refused(client, monkeypatch):
    """The lab refuses by interp.memory's estimates (checked against measured peaks in tests/reliability)."""
    from interp import memory
    from tests.serve.tiny_lab import tiny_lab_model

    model = tiny_lab_model()
    n = len(model.encode(PROMPT))
    need = memory.forward_bytes(model, 1, n, keep_layers=True)
    monkeypatch.setenv("INTERP_MEMORY_LIMIT", str(int(need / memory.HEADROOM) - 1))
    one_sentence(client.post("/api/predict", json={"prompt": PROMPT}), 413, "memory", f"a {n}-token prompt")
    one_sentence(client.post("/api/trace", json={"prompt": "The {} is in", "subject": "Louvre"}), 413, "memory")
    monkeypatch.setenv("INTERP_MEMORY_LIMIT", str(int(need / memory.HEADROOM) + 1))
    assert client.post("/api/predict", json={"prompt": PROMPT}).status_code == 200
