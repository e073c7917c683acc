"""`interp inspect`: what the model is and what it predicts, layer by layer."""

from __future__ import annotations

import click

from cli.common import emit, load_model_for_cli, model_options, output_options, prepare_out, write_json


@click.command("inspect")
@model_options
@click.argument("prompt")
@click.option("--top-k", "-k", type=int, default=5, show_default=True, help="Next tokens to show.")
@output_options
def inspect_cmd(model: str, device: str, dtype: str, prompt: str, top_k: int, as_json: bool, out, force: bool,
                no_progress: bool) -> None:
    """Config summary, top-k next tokens and a logit-lens table for PROMPT.

    \b
    Example:
      interp inspect "The Eiffel Tower is located in the city of" --json
    """
    from interp.errors import InvalidInputError

    if not prompt.strip():
        raise InvalidInputError("The prompt is empty; give some text.")
    if top_k <= 0:
        raise InvalidInputError(f"--top-k must be at least 1, got {top_k}.")
    out = prepare_out(out, force)
    from interp.analysis.inspect import inspect_prompt

    from cli.checks import prompt_fits, top_k_fits

    m = load_model_for_cli(model, device, dtype)
    top_k_fits(m, top_k)
    prompt_fits(m, prompt)
    result = inspect_prompt(m, prompt, top_k=top_k)
    summary = result.to_json()
    if out is not None:
        write_json(out / "inspect.json", summary)
        result.logit_lens.to_csv(out / "logit_lens.csv", index=False)
    emit(summary, as_json, result.render())
