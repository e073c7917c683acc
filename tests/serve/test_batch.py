"""The lab page's batch edit (`POST /api/edits/facts`): a fact file written with one editor as one edit, undone
bit for bit; the collapse rail; and the upload's checks, each refusal one sentence. On the tiny lab model."""

from __future__ import annotations

import json

import pytest
import torch

from interp.serve.lab import Limits
from tests.serve.test_api import JSON, one_sentence

OCTET = {"content-type": "application/octet-stream"}
# facts the tiny model's 64-word vocabulary can spell (the subject next to the answer, as the lab tests' EDIT)
SUBJECTS_TARGETS = [("Paris", "Rome"), ("London", "Berlin"), ("Madrid", "Tokyo")]


def fact_file(n: int = 3, jsonl: bool = False) -> bytes:
    records = [{"case_id": i, "requested_rewrite": {"prompt": "The famous tower in {}", "subject": s,
                                                    "target_new": {"str": t}, "target_true": {"str": "France"}}}
               for i, (s, t) in enumerate((SUBJECTS_TARGETS * n)[:n])]
    if jsonl:
        return "\n".join(json.dumps(r) for r in records).encode()
    return json.dumps(records).encode()


def weights(lab) -> dict:
    return {k: v.clone() for k, v in lab.model.state_dict().items()}


@pytest.mark.parametrize("method,query,steps", [
    ("memit", "?method=memit&batch_size=2&limit=3", 2),  # three facts in batches of two
    ("ft-l", "?method=ft-l", 3),  # one request a step
])
def test_a_fact_file_is_one_edit_and_undo_restores_it_bit_for_bit(client, lab, method, query, steps):
    info = lab.info()
    layers = info["memit_layers"] if method == "memit" else [info["rome_layer"]]  # FT-L tunes ROME's layer
    original = weights(lab)
    r = client.post("/api/edits/facts" + query, content=fact_file(4 if method == "memit" else 3), headers=OCTET)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["facts"] == 3 and data["steps"] == steps and 0 <= data["rewritten"] <= 3
    assert data["edit"]["method"] == method and data["edit"]["layers"] == layers
    assert [q["subject"] for q in data["edit"]["requests"]] == ["Paris", "London", "Madrid"]
    assert data["perplexity_before"] > 0 and data["perplexity_after"] > 0
    changed = sorted(k for k, v in lab.model.state_dict().items() if not torch.equal(v, original[k]))
    assert changed == [f"blocks.{l}.mlp.w_out" for l in layers]
    assert [e["id"] for e in client.get("/api/edits").json()] == [data["edit"]["id"]]
    # the batch saves as one edit file, made for the unedited weights
    saved = client.get(f"/api/edits/{data['edit']['id']}/file")
    assert saved.status_code == 200 and len(saved.content) > 0

    assert client.delete(f"/api/edits/{data['edit']['id']}", headers=JSON).status_code == 200
    for k, v in lab.model.state_dict().items():
        assert torch.equal(v, original[k]), k
    assert client.get("/api/edits").json() == []
    # the file applies to the restored weights and lands where the batch did (to float rounding)
    loaded = client.post("/api/edits/file", content=saved.content, headers=OCTET)
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["layers"] == layers and len(loaded.json()["requests"]) == 3


def test_a_collapsed_batch_is_restored_and_refused(client, lab, monkeypatch):
    """The perplexity rail: a batch whose held-out perplexity ends above 10x the unedited one is undone."""
    import interp.analysis.rome.scale as scale
    import interp.analysis.rome.session as session

    calls = []

    def perplexity(model, ids, window=256):
        calls.append(1)
        return 5.0 if len(calls) == 1 else 80.0  # before: 5; after the batch: 16x

    monkeypatch.setattr(session, "perplexity", perplexity)
    monkeypatch.setattr(scale, "perplexity", perplexity)
    original = weights(lab)
    r = client.post("/api/edits/facts?method=ft-l", content=fact_file(2), headers=OCTET)
    one_sentence(r, 400, "collapsed after 2 edits", "from 5.0 to 80.0", "undone")
    assert all(torch.equal(v, original[k]) for k, v in lab.model.state_dict().items())
    assert client.get("/api/edits").json() == []
    assert not client.get("/api/progress").json()["busy"]


def test_an_outlier_step_is_reported(client, lab, monkeypatch):
    """The update-norm rail: a step far outside the earlier ones is flagged in the answer."""
    from interp.analysis.rome.edit import Edit, LayerDelta, weight_hash
    from interp.analysis.rome.session import EditSession

    def compute(self, requests):  # a deliberately broken editor: step 7's update is 1,000 times the others
        w = self.model.blocks[1].mlp.w_out
        size = 1.0 if len(self.steps) == 6 else 1e-3
        left = torch.zeros(w.shape[0], 1)
        left[0, 0] = size
        right = torch.zeros(1, w.shape[1])
        right[0, 0] = 1.0
        return Edit(self.model.cfg.name, "rome", [LayerDelta(1, left, right, weight_hash(w))], list(requests))

    monkeypatch.setattr(EditSession, "compute", compute)
    r = client.post("/api/edits/facts?method=ft-l&limit=8", content=fact_file(8), headers=OCTET)
    assert r.status_code == 200, r.text
    assert r.json()["flagged_steps"] == [7] and r.json()["steps"] == 8


@pytest.mark.parametrize("query,body,headers,status,words", [
    ("", b"{not json", OCTET, 400, ["uploaded fact file", "not valid JSON"]),
    ("", b"[{\"case_id\": 1}]", OCTET, 400, ["uploaded fact file", "requested_rewrite"]),
    ("", b"   ", OCTET, 400, ["empty"]),
    ("", b"[]", OCTET, 400, ["no facts"]),
    ("", fact_file(), JSON, 415, ["application/octet-stream"]),
    ("?method=lora", fact_file(), OCTET, 422, ["method"]),
    ("?batch_size=0", fact_file(), OCTET, 400, ["batch_size", "from 1 to"]),
    ("?limit=101", fact_file(), OCTET, 400, ["limit", "from 1 to 100"]),
])
def test_bad_fact_uploads_are_one_sentence(client, lab, query, body, headers, status, words):
    original = weights(lab)
    one_sentence(client.post("/api/edits/facts" + query, content=body, headers=headers), status, *words)
    assert all(torch.equal(v, original[k]) for k, v in lab.model.state_dict().items())


def test_fact_upload_limits(lab):
    from fastapi.testclient import TestClient

    from interp.serve import create_app

    lab.limits = Limits(max_batch_facts=2, max_upload_bytes=2000)
    with TestClient(create_app(lab)) as c:
        one_sentence(c.post("/api/edits/facts", content=fact_file(3), headers=OCTET), 413, "3 facts", "at most 2")
        one_sentence(c.post("/api/edits/facts", content=b" " * 5000, headers=OCTET), 413, "fact files",
                     "at most 2,000 bytes")
        words = b'[{"case_id": 0, "requested_rewrite": {"prompt": "The {}", "subject": "Paris", ' \
                b'"target_new": {"str": "Rome Rome Rome Rome Rome Rome Rome Rome Rome Rome Rome Rome Rome Rome Rome ' \
                b'Rome Rome"}, "target_true": {"str": "France"}}}]'
        one_sentence(c.post("/api/edits/facts", content=words, headers=OCTET), 413, "new answer of fact 1")
        # a foreign page cannot post a fact file either
        one_sentence(c.post("/api/edits/facts", content=fact_file(1), headers=OCTET | {"origin": "http://evil.test"}),
                     403, "other sites")
