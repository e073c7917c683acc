"""The JSON API of `interp serve` through the ASGI test client, on a tiny random model."""

from __future__ import annotations

import threading

import pytest
import torch

from interp.serve.lab import Limits

JSON = {"content-type": "application/json"}  # the lab requires it on every state-changing call, DELETE too

PROMPT = "The Eiffel Tower is located in the city of"
# On the tiny model the subject must sit next to the answer for an edit to move it: only 2 layers follow
# the edited one, so a subject early in the prompt reaches the last position too weakly.
EDIT = {"prompt": "The famous tower in {}", "subject": "Paris", "target": "Rome", "layers": [2],
        "paraphrase": "It was red . The famous tower in Paris", "neighbour": "The famous tower in London"}


def one_sentence(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    message = body["error"]
    assert "\n" not in message and "Traceback" not in message and message.endswith("."), message
    for w in words:
        assert w.lower() in message.lower(), message
    return message


def test_model_info_and_page(client):
    info = client.get("/api/model").json()
    assert info["model"] == "tiny-lab" and info["n_layers"] == 4 and info["rome_layer"] == 1
    assert info["token_required"] is False
    page = client.get("/")
    assert page.status_code == 200 and "interp lab" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    # nothing from elsewhere
    assert "cdn" not in page.text.lower() and "http" not in page.text.replace("http-equiv", "")
    js = client.get("/page.js")
    assert js.status_code == 200 and "interpAttentionViewer" in js.text and "innerHTML" not in js.text
    assert client.get("/page.css").status_code == 200
    assert "/api/trace" in client.get("/openapi.json").json()["paths"]


def test_predict_top_k_logit_lens_and_continuation(client, lab):
    r = client.post("/api/predict", json={"prompt": PROMPT, "top_k": 5, "new_tokens": 4})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["tokens"][0] == "[BOS]" and data["tokens"][1:4] == ["The", "Eiffel", "Tower"]
    probs = [t["prob"] for t in data["top_next"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    logits = lab.model(lab.model.to_tokens(PROMPT))[0, -1]
    assert data["top_next"][0]["id"] == int(logits.argmax())
    assert [row["layer"] for row in data["logit_lens"]] == [0, 1, 2, 3]
    assert data["logit_lens"][-1]["answer_prob"] == pytest.approx(probs[0], rel=1e-4)  # last layer = the output
    assert data["answer"] == data["top_next"][0]["token"]
    from interp.model.generate import generate

    assert data["continuation"] == generate(lab.model, PROMPT, max_new_tokens=4)


def test_attention_pattern_of_every_head_in_the_viewers_shape(client, lab):
    r = client.post("/api/attention", json={"prompt": PROMPT, "layer": 2})
    assert r.status_code == 200, r.text
    data = r.json()
    n = len(data["tokens"])
    assert data["layer"] == 2 and len(data["heads"]) == 4
    _, cache = lab.model.run_with_cache(lab.model.to_tokens(PROMPT), names_filter=["blocks.2.attn.hook_pattern"])
    for h, head in enumerate(data["heads"]):
        assert head["head"] == h and [len(row) for row in head["pattern"]] == list(range(1, n + 1))  # causal rows
        for q, row in enumerate(head["pattern"]):
            assert sum(row) == pytest.approx(1, abs=5e-3)
            assert row == pytest.approx(cache["blocks.2.attn.hook_pattern"][0, h, q, : q + 1].tolist(), abs=6e-4)


def test_trace_returns_heatmaps_scores_and_progress_ends_idle(client, lab):
    r = client.post("/api/trace", json={"prompt": "The {} is located in the city of", "subject": "Eiffel Tower",
                                        "samples": 3, "kinds": ["resid", "mlp"]})
    assert r.status_code == 200, r.text
    data = r.json()
    assert set(data["figures"]) == {"resid", "mlp"}
    assert all(u.startswith("data:image/png;base64,") for u in data["figures"].values())
    n = len(data["tokens"])
    assert [len(data["scores"]["resid"]), len(data["scores"]["resid"][0])] == [n, 4]
    assert data["subject_range"] == [2, 4] and data["samples"] == 3
    assert data["p_clean"] == pytest.approx(lab.predict(PROMPT, 1)["top_next"][0]["prob"], rel=1e-4)
    assert client.get("/api/progress").json() == {"busy": False, "task": None, "stage": "", "done": 0, "total": None,
                                                  "fraction": None, "seconds": 0.0}


def test_edit_apply_probe_undo_restores_weights_bit_for_bit(client, lab):
    original = {k: v.clone() for k, v in lab.model.state_dict().items()}
    before = client.post("/api/predict", json={"prompt": "The famous tower in Paris"}).json()["answer"]
    r = client.post("/api/edits", json=EDIT)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["edit"]["method"] == "rome" and data["edit"]["layers"] == [2] and data["edit"]["rank"] == 1
    prompt, paraphrase, neighbour = data["probes"]
    assert [p["kind"] for p in data["probes"]] == ["prompt", "paraphrase", "neighbour"]
    assert prompt["before"]["top"] == before != "Rome" and prompt["after"]["top"] == "Rome"
    assert prompt["after"]["p_target"] > prompt["before"]["p_target"]
    assert prompt["after"]["answer"] == before and prompt["after"]["p_answer"] < prompt["before"]["p_top"]
    assert client.post("/api/predict", json={"prompt": "The famous tower in Paris"}).json()["answer"] == "Rome"
    changed = [k for k, v in lab.model.state_dict().items() if not torch.equal(v, original[k])]
    assert changed == ["blocks.2.mlp.w_out"]
    listed = client.get("/api/edits").json()
    assert [e["id"] for e in listed] == [data["edit"]["id"]] and listed[0]["requests"][0]["target_new"] == "Rome"

    assert client.delete(f"/api/edits/{data['edit']['id']}", headers=JSON).status_code == 200
    for k, v in lab.model.state_dict().items():
        assert torch.equal(v, original[k]), k
    assert client.get("/api/edits").json() == []
    assert client.post("/api/predict", json={"prompt": "The famous tower in Paris"}).json()["answer"] == before
    one_sentence(client.delete(f"/api/edits/{data['edit']['id']}", headers=JSON), 404, "no active edit")


def test_memit_edit_and_stacked_undo_order(client, lab):
    original = {k: v.clone() for k, v in lab.model.state_dict().items()}
    first = client.post("/api/edits", json=EDIT).json()["edit"]["id"]
    memit = client.post("/api/edits", json=EDIT | {"target": "Madrid", "method": "memit", "layers": [1, 2]})
    assert memit.status_code == 200, memit.text
    second = memit.json()["edit"]
    assert second["method"] == "memit" and second["layers"] == [1, 2]
    # the first edit's layer changed again since: undo refuses, in one sentence, until the later one is undone
    one_sentence(client.delete(f"/api/edits/{first}", headers=JSON), 400, "undo later edits first")
    assert client.delete(f"/api/edits/{second['id']}", headers=JSON).status_code == 200
    assert client.delete(f"/api/edits/{first}", headers=JSON).status_code == 200
    assert all(torch.equal(v, original[k]) for k, v in lab.model.state_dict().items())


def test_save_and_load_an_edit_file(client, lab):
    original = {k: v.clone() for k, v in lab.model.state_dict().items()}
    edit_id = client.post("/api/edits", json=EDIT).json()["edit"]["id"]
    edited_logits = lab.model(lab.model.to_tokens("The famous tower in Paris"))
    r = client.get(f"/api/edits/{edit_id}/file")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == f'attachment; filename="tinylab-Paris-Rome-{edit_id}.edit"'
    data = r.content
    client.delete(f"/api/edits/{edit_id}", headers=JSON)
    loaded = client.post("/api/edits/file", content=data, headers={"content-type": "application/octet-stream"})
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["source"] == "file" and loaded.json()["layers"] == [2]
    assert torch.equal(lab.model(lab.model.to_tokens("The famous tower in Paris")), edited_logits)
    # the same file again: made for the unedited weights, so refused while they are edited
    one_sentence(client.post("/api/edits/file", content=data, headers={"content-type": "application/octet-stream"}),
                 400, "differs from the weights")
    client.delete(f"/api/edits/{loaded.json()['id']}", headers=JSON)
    assert all(torch.equal(v, original[k]) for k, v in lab.model.state_dict().items())


def test_edit_files_are_checked_like_edit_load(client, lab, tmp_path):
    from interp.serve import Lab, create_app
    from tests.serve.tiny_lab import tiny_lab_model

    octet = {"content-type": "application/octet-stream"}
    one_sentence(client.post("/api/edits/file", content=b"not a safetensors file", headers=octet), 400,
                 "not an interp edit file")
    one_sentence(client.post("/api/edits/file", content=b"", headers=octet), 400, "empty")
    one_sentence(client.post("/api/edits/file", content=b"x", headers={"content-type": "text/plain"}), 415,
                 "application/octet-stream")
    # another model's edit: made on a model named otherwise
    other = tiny_lab_model()
    other.cfg = other.cfg.replace(name="other-model")
    from fastapi.testclient import TestClient

    other_lab = Lab(other, stats=lab.stats)
    with TestClient(create_app(other_lab)) as oc:
        eid = oc.post("/api/edits", json=EDIT).json()["edit"]["id"]
        data = oc.get(f"/api/edits/{eid}/file").content
    one_sentence(client.post("/api/edits/file", content=data, headers=octet), 400, "made for other-model")
    assert client.get("/api/edits").json() == []


def test_upload_size_limit(lab):
    from fastapi.testclient import TestClient

    from interp.serve import create_app

    lab.limits = Limits(max_upload_bytes=1000)
    with TestClient(create_app(lab)) as c:
        one_sentence(c.post("/api/edits/file", content=b"x" * 5000,
                            headers={"content-type": "application/octet-stream"}), 413, "at most 1,000 bytes")

        def chunks():  # no Content-Length: the limit holds while streaming
            for _ in range(10):
                yield b"y" * 300

        one_sentence(c.post("/api/edits/file", content=chunks(), headers={"content-type": "application/octet-stream"}),
                     413, "over 1,000 bytes")


@pytest.mark.parametrize("path,body,status,words", [
    ("/api/predict", {"prompt": ""}, 400, ["prompt is empty"]),
    ("/api/predict", {"prompt": "   "}, 400, ["prompt is empty"]),
    ("/api/predict", {"top_k": 3}, 422, ["'prompt' is required"]),
    ("/api/predict", {"prompt": "The city", "top_k": 0}, 400, ["top_k", "from 1 to 50"]),
    ("/api/predict", {"prompt": "The city", "top_k": "many"}, 422, ["top_k"]),
    ("/api/predict", {"prompt": "The city " * 200}, 413, ["at most 128"]),  # the tiny model's context
    ("/api/attention", {"prompt": "The city", "layer": 9}, 400, ["layer 9 does not exist", "0-3"]),
    ("/api/trace", {"prompt": "The {} is in", "subject": "Louvre", "samples": 0}, 400, ["samples"]),
    ("/api/trace", {"prompt": "The city of", "subject": "Louvre"}, 400, ["not in the prompt"]),
    ("/api/trace", {"prompt": "The {} is in", "subject": "Louvre", "kinds": ["neurons"]}, 422, ["kinds"]),
    ("/api/trace", {"prompt": "The {} is in the city of " + "the city of " * 20, "subject": "Louvre"}, 413,
     ["at most 48"]),
    ("/api/edits", {"prompt": "The Louvre is in", "subject": "Louvre", "target": "Rome"}, 400, ["no '{}'"]),
    ("/api/edits", {"prompt": "The {} is in", "subject": "Louvre", "target": " "}, 400, ["target is empty"]),
    ("/api/edits", {"prompt": "The {} is in", "subject": "Louvre", "target": "Rome", "method": "lora"}, 422,
     ["method"]),
    ("/api/edits", {"prompt": "The {} is in", "subject": "Louvre", "target": "Rome", "layers": [7]}, 400,
     ["layer 7 does not exist"]),
    ("/api/edits", {"prompt": "The {} is in", "subject": "Louvre", "target": "Rome", "layers": [1, 2]}, 400,
     ["rome edits one layer"]),
])
def test_bad_input_is_one_sentence(client, path, body, status, words):
    one_sentence(client.post(path, json=body), status, *words)


def test_malformed_requests_are_one_sentence(client):
    one_sentence(client.post("/api/predict", content=b"{not json", headers={"content-type": "application/json"}),
                 422, "not valid JSON")
    # a form post from another site cannot reach the JSON API: it is not application/json
    one_sentence(client.post("/api/predict", content=b'{"prompt": "x"}', headers={"content-type": "text/plain"}),
                 415, "Content-Type: application/json")
    one_sentence(client.get("/api/nothing"), 404, "nothing at /api/nothing")
    one_sentence(client.put("/api/edits"), 405, "not allowed")
    one_sentence(client.get("/api/edits/abc/file"), 422, "edit_id")


def test_a_long_task_makes_other_calls_wait_with_one_sentence(client, lab):
    started, release = threading.Event(), threading.Event()

    def hold():
        with lab.using_model("trace"):
            lab.progress.set_stage("tracing", total=10)
            started.set()
            release.wait()

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert started.wait(30)
        progress = client.get("/api/progress").json()
        assert progress["busy"] and progress["task"] == "trace" and progress["total"] == 10
        one_sentence(client.post("/api/predict", json={"prompt": PROMPT}), 409, "busy with trace (tracing, 0/10)")
        one_sentence(client.post("/api/edits", json=EDIT), 409, "busy")
    finally:
        release.set()
        t.join(30)
    assert client.post("/api/predict", json={"prompt": PROMPT}).status_code == 200


def test_too_many_edits_and_too_large_traces_are_refused(lab):
    from fastapi.testclient import TestClient

    from interp.serve import create_app

    lab.limits = Limits(max_edits=1, max_trace_rows=100)
    with TestClient(create_app(lab)) as c:
        assert c.post("/api/edits", json=EDIT).status_code == 200
        one_sentence(c.post("/api/edits", json=EDIT | {"target": "London"}), 413, "undo one first")
        one_sentence(c.post("/api/trace", json={"prompt": "The {} is in", "subject": "Louvre", "samples": 10}), 413,
                     "over this server's limit of 100")


def test_token_is_required_on_every_api_call_when_set(lab):
    from fastapi.testclient import TestClient

    from interp.serve import create_app

    secret = "s3cret-token-value"
    with TestClient(create_app(lab, token=secret)) as c:
        for method, path in [("GET", "/api/model"), ("GET", "/api/progress"), ("GET", "/api/edits"),
                             ("POST", "/api/predict"), ("POST", "/api/attention"), ("POST", "/api/trace"),
                             ("POST", "/api/edits"), ("DELETE", "/api/edits/1"), ("GET", "/api/edits/1/file"),
                             ("POST", "/api/edits/file"), ("GET", "/openapi.json")]:
            one_sentence(c.request(method, path, json={"prompt": PROMPT}), 401, "needs its token")
            one_sentence(c.request(method, path, json={"prompt": PROMPT}, headers={"Authorization": "Bearer wrong"}),
                         401, "needs its token")
        assert c.get("/").status_code == 200  # the page holds no data; it reads the token from #token=
        ok = {"Authorization": f"Bearer {secret}"}
        assert c.get("/api/model", headers=ok).json()["token_required"] is True
        assert c.post("/api/predict", json={"prompt": PROMPT}, headers=ok).status_code == 200
        assert c.get("/api/edits", headers={"X-Interp-Token": secret}).status_code == 200


def test_loopback_server_refuses_other_host_names(lab):
    from fastapi.testclient import TestClient

    from interp.serve import create_app
    from interp.serve.app import LOOPBACK_HOSTS

    with TestClient(create_app(lab, allowed_hosts=LOOPBACK_HOSTS), base_url="http://127.0.0.1:8765") as c:
        assert c.get("/api/model").status_code == 200
        assert c.get("/api/model", headers={"Host": "localhost:8765"}).status_code == 200
        assert c.get("/api/model", headers={"Host": "[::1]:8765"}).status_code == 200
        one_sentence(c.get("/api/model", headers={"Host": "attacker.example:8765"}), 400, "localhost")


def test_values_render_as_text_in_the_page_script():
    """The page script builds every node with textContent: no innerHTML, insertAdjacentHTML or document.write."""
    from interp.serve.page import PAGE_JS

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in PAGE_JS, sink


def test_progress_follows_a_real_trace(lab):
    """The analyses' tqdm-shaped progress lands in Lab.progress: each restored (kind, layer) counts once."""
    seen = []
    wrap = lab.progress.wrap

    def spy(iterable=None, **kw):
        for item in wrap(iterable, **kw):
            seen.append(lab.progress.snapshot())
            yield item

    lab.progress.wrap = spy
    lab.trace("The {} is located in the city of", "Eiffel Tower", samples=2, kinds=["resid", "mlp"])
    tracing = [s for s in seen if s["stage"] == "tracing"]
    assert [s["done"] for s in tracing] == list(range(8)) and {s["total"] for s in tracing} == {8}
    assert all(s["busy"] and s["task"] == "trace" for s in tracing)
    assert not lab.progress.snapshot()["busy"]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_model_predicts_edits_and_undoes_exactly(tiny_cache, dtype):
    from fastapi.testclient import TestClient

    from interp.analysis.rome import StatsParams
    from interp.serve import Lab, create_app
    from tests.serve.tiny_lab import tiny_lab_model

    model = tiny_lab_model().to(dtype)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    with TestClient(create_app(Lab(model, stats=StatsParams(n_tokens=400, sample_len=24, batch_size=16)))) as c:
        assert c.get("/api/model").json()["dtype"] == str(dtype).removeprefix("torch.")
        assert c.post("/api/attention", json={"prompt": PROMPT, "layer": 0}).status_code == 200
        r = c.post("/api/edits", json=EDIT)
        assert r.status_code == 200, r.text
        assert r.json()["probes"][0]["after"]["top"] == "Rome"
        assert c.delete(f"/api/edits/{r.json()['edit']['id']}", headers=JSON).status_code == 200
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())
