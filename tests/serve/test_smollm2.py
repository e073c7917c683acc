"""The lab on the real SmolLM2 through its API: Eiffel Tower -> Rome by ROME, the Louvre still in Paris,
undo exact, and the saved edit file reapplying the same edit. Statistics use the shared cache."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.slow

EIFFEL = "The Eiffel Tower is located in the city of"
LOUVRE = "The Louvre is located in the city of"

JSON = {"content-type": "application/json"}


def test_eiffel_tower_to_rome_keeps_the_louvre_in_paris(smollm2):
    from fastapi.testclient import TestClient

    from interp.serve import Lab, create_app

    original = {k: v.clone() for k, v in smollm2.state_dict().items()}
    lab = Lab(smollm2)
    try:
        with TestClient(create_app(lab)) as c:
            def answer(prompt: str) -> str:
                return c.post("/api/predict", json={"prompt": prompt, "top_k": 3}).json()["answer"]

            assert answer(EIFFEL) == " Paris" and answer(LOUVRE) == " Paris"
            r = c.post("/api/edits", json={"prompt": "The {} is located in the city of", "subject": "Eiffel Tower",
                                           "target": "Rome",
                                           "paraphrase": "The Eiffel Tower stands in the heart of the city of",
                                           "neighbour": LOUVRE, "new_tokens": 8})
            assert r.status_code == 200, r.text
            edit = r.json()
            prompt, paraphrase, neighbour = edit["probes"]
            assert prompt["before"]["top"] == " Paris" and prompt["after"]["top"] == " Rome"
            assert prompt["after"]["p_target"] > 0.5 > prompt["before"]["p_target"]
            assert neighbour["after"]["top"] == " Paris"
            assert answer(EIFFEL) == " Rome" and answer(LOUVRE) == " Paris"
            data = c.get(f"/api/edits/{edit['edit']['id']}/file").content

            assert c.delete(f"/api/edits/{edit['edit']['id']}", headers=JSON).status_code == 200
            assert all(torch.equal(v, original[k]) for k, v in smollm2.state_dict().items())
            assert answer(EIFFEL) == " Paris"
            loaded = c.post("/api/edits/file", content=data, headers={"content-type": "application/octet-stream"})
            assert loaded.status_code == 200, loaded.text
            assert answer(EIFFEL) == " Rome"
            assert c.delete(f"/api/edits/{loaded.json()['id']}", headers=JSON).status_code == 200
    finally:
        for active in reversed(lab.edits):  # leave the session's model as it was, whatever failed
            active.edit.undo(smollm2)
    assert all(torch.equal(v, original[k]) for k, v in smollm2.state_dict().items())
