"""A fake analysis for the reliability tests (see conftest.py): its summary, findings, table and viewer
tokens carry `text` verbatim; `wait_file`: create it, then sleep until killed; `mutate`/`fail`: misbehave."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from interp.analysis.result import ResultBase


@dataclass(frozen=True)
class FakeParams:
    text: str = "plain"
    seed: int = 0
    wait_file: str = ""  # touch this file, then sleep (a test kills the process here)
    barrier: str = ""  # touch barrier + pid, then wait until `parties` such files exist
    parties: int = 2
    mutate: bool = False
    fail: bool = False


@dataclass(repr=False)
class FakeResult(ResultBase):
    text: str
    value: float
    model: str = "tiny"
    params: FakeParams = field(default_factory=FakeParams)
    seconds: float = 0.0
    command: str = ""

    def to_json(self) -> dict:
        return {"text": self.text, "value": self.value, "nan": float("nan"), "inf": float("inf")}

    def tables(self) -> dict:
        return {"rows": pd.DataFrame({"token": [self.text, "x"], "value": [self.value, 2.0]})}

    def figures(self) -> dict:
        from interp.figures import new_figure

        fig, ax = new_figure((2, 2), dpi=40)
        ax.plot([0, 1], [0, self.value])
        return {"plot": fig}

    def findings(self) -> list:
        return [self.finding("claim", f"The text is {self.text} and the value **{self.value:.3f}**.", self.value)]

    def summary_markdown(self) -> str:
        return f"- Text: {self.text}\n- Value **{self.value:.3f}**\n\n| token | value |\n|---|---|\n| {self.text} | 1 |"

    def attention_viewer(self) -> dict:
        if self.params.barrier:  # the last step before the entry is stored: all writers store at the same moment
            wait_for_all(self.params.barrier + "-store", self.params.parties, poll=0.0002)
        tokens = [self.text, "</script>", "<!--<script>", "b"]
        return {"tokens": tokens, "heads": [{"layer": 0, "head": 0, "score": 0.5,
                                             "pattern": [[1.0], [0.5, 0.5], [0.2, 0.3, 0.5], [0.1, 0.2, 0.3, 0.4]]}]}


def wait_for_all(barrier: str, parties: int, poll: float = 0.02) -> None:
    """A file barrier between processes: touch barrier.<pid>, wait until `parties` such files exist."""
    Path(f"{barrier}.{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while len(list(Path(barrier).parent.glob(Path(barrier).name + ".*"))) < parties:
        if time.monotonic() > deadline:
            raise RuntimeError("barrier timed out")
        time.sleep(poll)


@torch.no_grad()
def run_fake(model, params: FakeParams, progress=None) -> FakeResult:
    if params.fail:
        if params.mutate:
            model.blocks[0].mlp.w_out.add_(1.0)
        raise RuntimeError("fake analysis failed on purpose")
    if params.barrier:
        wait_for_all(params.barrier, params.parties)
    if params.wait_file:
        Path(params.wait_file).touch()
        time.sleep(600)
    if os.environ.get("RELIABILITY_WAIT_TEXT") == params.text:  # the kill-and-resume tests stop here
        Path(os.environ["RELIABILITY_WAIT_FILE"]).touch()
        time.sleep(600)
    if params.mutate:
        model.blocks[0].mlp.w_out.add_(1.0)
    value = float(model.blocks[0].mlp.w_out.float().norm())
    return FakeResult(params.text, value, model.cfg.name, params)
