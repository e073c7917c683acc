"""Moved: the report owns no analysis. The overview is `interp.analysis.overview`; the attention viewer's
data comes from the induction package (`interp.analysis.induction.viewer`). Kept importable."""

from interp.analysis.induction.viewer import VIEWER_TEXT, ViewerParams, ViewerResult, head_scores, run_attention_viewer
from interp.analysis.overview.params import OverviewParams
from interp.analysis.overview.result import OverviewResult
from interp.analysis.overview.run import run_overview

__all__ = ["OverviewParams", "OverviewResult", "run_overview", "ViewerParams", "ViewerResult", "run_attention_viewer",
           "head_scores", "VIEWER_TEXT"]
