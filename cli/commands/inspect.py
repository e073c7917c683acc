"""`interp inspect`: what the model is and what it predicts, layer by layer; `interp overview`: the same over
a few prompts at once (the report's first section)."""

from __future__ import annotations

import click

from cli.common import model_options, output_options, run_analysis, write_json


def inspect_params(prompt, top_k, **_):
    """The InspectParams these options stand for (an empty prompt or --top-k < 1 fails here)."""
    from interp.analysis.inspect.params import InspectParams

    return InspectParams(prompt=prompt, top_k=top_k)


@click.command("inspect")
@model_options
@click.argument("prompt")
@click.option("--top-k", "-k", type=int, default=5, show_default=True, help="Next tokens to show.")
@output_options
def inspect_cmd(**opts) -> None:
    """Config summary, top-k next tokens and a logit-lens table for PROMPT.

    \b
    Example:
      interp inspect "The Eiffel Tower is located in the city of" --json
    """
    params = inspect_params(**opts)  # bad options are refused before torch is imported
    from interp.analysis.inspect.run import run_inspect

    from cli.checks import checked, prompt_fits, top_k_fits

    def fits(model, params) -> None:
        top_k_fits(model, params.top_k)
        prompt_fits(model, params.prompt)

    result = run_analysis(checked(run_inspect, fits), params, opts, human=lambda r: r.render())
    if opts["out"] is not None:  # the file this command has always written, next to the common ones
        write_json(opts["out"] / "inspect.json", result.to_json())


inspect_cmd.params_from_options = inspect_params


def overview_params(prompts, top_k, **_):
    """The OverviewParams these options stand for (no --prompt: the two default fact prompts)."""
    from interp.analysis.overview.params import OverviewParams
    from interp.errors import InvalidInputError

    if any(not p.strip() for p in prompts):
        raise InvalidInputError("A --prompt is empty; give some text.")
    return OverviewParams(top_k=top_k, **({"prompts": tuple(prompts)} if prompts else {}))


@click.command("overview")
@model_options
@click.option("--prompt", "prompts", multiple=True,
              help="A prompt to read (repeat for several; default: two fact prompts).")
@click.option("--top-k", "-k", type=int, default=5, show_default=True, help="Next tokens to keep per prompt.")
@output_options
def overview(**opts) -> None:
    """Next-token predictions and the logit lens over a few prompts, with one figure (the report's overview).

    \b
    Example:
      interp overview --prompt "The Eiffel Tower is located in the city of" --prompt "Paris is the capital of"
    """
    params = overview_params(**opts)  # bad options are refused before torch is imported
    from interp.analysis.overview.run import run_overview

    from cli.checks import checked, prompt_fits, top_k_fits

    def fits(model, params) -> None:
        top_k_fits(model, params.top_k)
        for prompt in params.prompts:
            prompt_fits(model, prompt)

    run_analysis(checked(run_overview, fits), params, opts)


overview.params_from_options = overview_params
