"""`interp attention-viewer`: rank the induction heads, then record the top heads' attention on a text shown
twice (the data behind the report's attention-pattern viewer)."""

from __future__ import annotations

import click

from cli.common import model_options, output_options, run_analysis, seed_option


def viewer_params(text, n_heads, seq_len, batch, seed, **_):
    """The ViewerParams these options stand for (no --text: the report's sentence)."""
    from interp.analysis.induction.params import ViewerParams

    return ViewerParams(n_heads=n_heads, seq_len=seq_len, batch=batch, seed=seed,
                        **({"text": text} if text is not None else {}))


@click.command("attention-viewer")
@model_options
@click.option("--text", default=None, help="The text shown twice (default: a sentence from a novel's first page).")
@click.option("--n-heads", type=int, default=6, show_default=True, help="Top induction heads whose patterns are kept.")
@click.option("--seq-len", type=int, default=40, show_default=True, help="Length of r in [BOS] + r + r (ranking).")
@click.option("--batch", type=int, default=8, show_default=True, help="Repeated random sequences for the ranking.")
@seed_option
@output_options
def attention_viewer(**opts) -> None:
    """Rank every head by its induction score on [BOS] + r + r, then record the top heads' attention patterns
    on TEXT shown twice; --out writes the scores, a figure and viewer.json (the report viewer's data).

    \b
    Example:
      interp attention-viewer --n-heads 4 --text "The cat sat on the mat." --out viewer
    """
    params = viewer_params(**opts)  # bad options are refused before torch is imported
    from interp.analysis.induction.viewer import run_attention_viewer

    from cli.checks import checked, prompt_fits

    def fits(model, params) -> None:
        from interp.errors import InvalidInputError

        n = 1 + 2 * params.seq_len
        if n > model.cfg.n_ctx:
            raise InvalidInputError(f"--seq-len {params.seq_len} makes {n}-token sequences, longer than "
                                    f"{model.cfg.name}'s context of {model.cfg.n_ctx}; lower --seq-len.")
        text = " " + params.text.strip()  # as run_attention_viewer reads it, twice
        prompt_fits(model, text, extra=len(model.encode(text, prepend_bos=False)), what="text shown twice",
                    fix="shorten --text")

    result = run_analysis(checked(run_attention_viewer, fits), params, opts)
    if opts["out"] is not None:
        from interp.jsonio import write_json

        write_json(opts["out"] / "viewer.json", result.attention_viewer())


attention_viewer.params_from_options = viewer_params
