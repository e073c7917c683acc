"""`interp patch`: activation or attribution patching of a clean/corrupted prompt pair."""

from __future__ import annotations

import click

from cli.common import model_options, output_options, run_analysis


def patch_params(clean, corrupted, answer, wrong, kind, method, direction, **_):
    from interp.analysis.patching.params import PatchParams

    return PatchParams(clean=clean, corrupted=corrupted, answer=answer, wrong=wrong, kind=kind, method=method,
                       direction=direction)


@click.command("patch")
@model_options
@click.option("--clean", required=True, help="The prompt whose answer we trace.")
@click.option("--corrupted", required=True,
              help="The same prompt with the deciding detail changed (same token length).")
@click.option("--answer", required=True, help="The clean prompt's answer (its first token is scored).")
@click.option("--wrong", required=True,
              help="The answer the corrupted prompt points to (the metric is the logit difference).")
@click.option("--kind", type=click.Choice(["resid", "attn", "mlp", "heads", "heads_pos"]), default="resid",
              show_default=True, help="Which grid to patch: residual stream, attention or MLP outputs per (layer, "
              "position), heads, or heads per position.")
@click.option("--method", type=click.Choice(["activation", "attribution", "both"]), default="activation",
              show_default=True,
              help="Exact activation patching, its gradient estimate, or both with their rank agreement.")
@click.option("--direction", type=click.Choice(["denoise", "noise"]), default="denoise", show_default=True,
              help="denoise: clean activations into the corrupted run; noise: corrupted into the clean run.")
@output_options
def patch(**opts):
    """Patch each cell of a grid between a clean and a corrupted prompt and measure how much of the logit
    difference comes back; heatmaps and CSV with --out.

    \b
    Example:
      interp patch --clean "When Mary and John went to the store, John gave a drink to" \\
                   --corrupted "When Mary and John went to the store, Mary gave a drink to" \\
                   --answer " Mary" --wrong " John" --kind heads --method both --out ioi
    """
    params = patch_params(**opts)  # bad options are refused before torch is imported
    from interp.analysis.patching.run import run_patch

    run_analysis(run_patch, params, opts)


patch.params_from_options = patch_params
