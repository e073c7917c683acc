"""The report's own two experiments on the real SmolLM2 (slow: loads the model once per session)."""

from __future__ import annotations

import pytest

from interp.analysis.induction.viewer import ViewerParams, run_attention_viewer
from interp.analysis.overview import OverviewParams, run_overview


@pytest.mark.slow
def test_overview_on_smollm2(smollm2):
    result = run_overview(smollm2, OverviewParams(prompts=("The Eiffel Tower is located in the city of",), top_k=3))
    top = result.predictions.iloc[0]
    assert top.token == " Paris" and top.prob > 0.5
    lens = result.logit_lens
    first_top1 = int(lens[lens.answer_rank == 0].layer.min())
    assert first_top1 > smollm2.cfg.n_layers // 2  # the answer appears late, as the logit lens usually shows
    assert "' Paris' with p = 0.70" in result.summary_markdown()


@pytest.mark.slow
def test_viewer_heads_are_induction_heads_against_the_median_head(smollm2):
    result = run_attention_viewer(smollm2, ViewerParams(n_heads=3, seq_len=20, batch=2))
    scores = result.scores
    top, median = scores.induction_score.iloc[0], scores.induction_score.median()
    assert top > 0.4 and top > 20 * median  # control: the typical head barely attends to the induction target
    view = result.attention_viewer()
    n = len(view["tokens"])
    assert n % 2 == 0 and view["tokens"][: n // 2] == view["tokens"][n // 2 :]  # the text twice (no BOS here)
    head = view["heads"][0]
    # on the readable text the best head also looks at the token after the earlier copy, mostly
    half = n // 2
    hits = [max(range(len(row)), key=row.__getitem__) == i - half + 1
            for i, row in enumerate(head["pattern"]) if i > half]
    assert sum(hits) / len(hits) > 0.5
