"""The lab page's batch edit as a person uses it, in headless Chromium on the tiny model: choose a fact file,
an editor and a batch size, write the facts, see one edit listed, undo it and see the prediction come back."""

from __future__ import annotations

import json

import pytest

from tests.serve.test_batch import fact_file
from tests.serve.test_browser import TINY, TOP, open_page


@pytest.mark.slow  # a browser (on the tiny model)
def test_write_a_fact_file_and_undo_it_in_the_page(tmp_path):
    facts = tmp_path / "facts.jsonl"
    facts.write_bytes(fact_file(5, jsonl=True))
    with open_page(TINY, tmp_path) as p:
        p.wait_for("document.getElementById('model-name').textContent === 'tiny-lab'", "the model's name")
        p.type_into("prompt", "The famous tower in London")
        p.click("#predict")
        before = p.wait_for(f"!document.getElementById('predict-out').hidden && ({TOP})", "the predictions")
        root = p.send("DOM.getDocument")["result"]["root"]["nodeId"]
        node = p.send("DOM.querySelector", {"nodeId": root, "selector": "#facts-file"})["result"]["nodeId"]
        p.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(facts)]})
        p.js("document.getElementById('facts-method').value = 'ft-l'")
        p.type_into("facts-batch", "2")
        p.click("#apply-facts")
        text = p.wait_for("!document.getElementById('facts-out').hidden && "
                          "document.getElementById('facts-out').textContent", "the batch's summary", tries=3000)
        assert text.startswith("5 facts written with FT-L in 5 steps") and "perplexity" in text, text
        p.wait_for("document.querySelectorAll('#edits-table tbody tr').length === 1", "the batch in the edit list")
        assert "and 2 more facts" in p.js("document.querySelector('#edits-table tbody tr').textContent")
        p.click("#edits-table button[data-edit]")
        p.wait_for("document.getElementById('edits-table').hidden", "the empty edit list")
        assert p.wait_for(f"({TOP}) === {json.dumps(before)}", "the original prediction")
        assert p.errors() == []
