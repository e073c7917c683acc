"""`interp induction`: find induction heads, their circuit, and prove them by ablation."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import (
    emit,
    force_option,
    json_option,
    load_model_for_cli,
    model_option,
    out_option,
    prepare_out,
    save_result,
    seed_option,
)


@click.command("induction")
@model_option
@click.option("--batch", type=int, default=16, show_default=True, help="Repeated random sequences per batch.")
@click.option("--seq-len", type=int, default=64, show_default=True, help="Length of r in [BOS] + r + r.")
@click.option("--top-k", type=int, default=5, show_default=True, help="Heads to ablate together.")
@click.option("--seeds", type=int, default=5, show_default=True, help="Random-head control draws.")
@seed_option
@click.option("--text", "text_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Text file for the natural-text check (default: text the model generates, seeded).")
@click.option("--no-text", is_flag=True, help="Skip the natural-text check.")
@click.option("--peer/--no-peer", default=True, show_default=True,
              help="Compare with TransformerLens' head detector on a TransformerBridge of the same model.")
@json_option
@out_option
@force_option
def induction(model, batch, seq_len, top_k, seeds, seed, text_file, no_text, peer, as_json, out, force):
    """Score every head on [BOS] + r + r, read copying and K-composition off the weights, ablate the top
    heads against random heads from the same layers, and check natural text."""
    from tqdm import tqdm

    from interp.analysis.induction import InductionParams, run_induction
    from interp.errors import InvalidInputError

    if text_file is not None and not text_file.exists():
        raise InvalidInputError(f"The text file {text_file} does not exist.")
    params = InductionParams(batch=batch, seq_len=seq_len, top_k=top_k, seeds=seeds, seed=seed,
                             text=not no_text, text_path=str(text_file) if text_file else None,
                             peer=peer, model_name=model)
    out_dir = prepare_out(out, force)
    lm = load_model_for_cli(model)
    result = run_induction(lm, params, progress=_Progress(tqdm))
    save_result(result, out_dir)
    emit(result.to_json(), as_json, result.summary_markdown())


class _Progress:
    """tqdm on stderr, plus `write` for step messages, so --json output on stdout stays clean."""

    def __init__(self, tqdm):
        self.tqdm = tqdm

    def __call__(self, it, **kw):
        import sys

        return self.tqdm(it, file=sys.stderr, leave=False, **kw)

    def write(self, msg: str) -> None:
        click.echo(msg, err=True)
