"""`interp generate`: continue a prompt."""

from __future__ import annotations

import click

from cli.common import emit, load_model_for_cli, model_options, output_options, prepare_out, seed_option, write_json


@click.command()
@model_options
@click.argument("prompt")
@click.option("--max-new-tokens", "-n", type=int, default=30, show_default=True, help="Tokens to generate.")
@click.option("--temperature", "-t", type=float, default=0.0, show_default=True, help="0 is greedy.")
@click.option("--top-k", type=int, default=None, help="Sample only from the k most likely tokens.")
@click.option("--top-p", type=float, default=None, help="Sample only from the smallest set with this much probability.")
@seed_option
@output_options
def generate(model: str, device: str, dtype: str, prompt: str, max_new_tokens: int, temperature: float, top_k, top_p,
             seed: int, as_json: bool, out, force: bool, no_progress: bool) -> None:
    """Continue PROMPT with MODEL (KV cache; greedy unless --temperature > 0).

    \b
    Example:
      interp generate "Once upon a time" -n 40 --temperature 0.8 --top-p 0.9 --seed 1
    """
    from interp.errors import InvalidInputError
    from interp.model.registry import weights_source
    from interp.model.sampling import check_sampling

    if not prompt.strip():
        raise InvalidInputError("The prompt is empty; give some text.")
    from cli.checks import finite, prompt_fits, top_k_fits

    finite("--temperature", temperature, 0.0)
    finite("--top-p", top_p)
    check_sampling(max_new_tokens, temperature, top_k, top_p)  # before torch is imported
    out = prepare_out(out, force)
    weights_source(model, locate=False)  # an unknown --model too
    from interp.model.generate import generate as continue_prompt

    m = load_model_for_cli(model, device, dtype)
    if top_k is not None:
        top_k_fits(m, top_k)
    prompt_fits(m, prompt, max_new_tokens, "generation (prompt and new tokens)",
                "shorten the prompt or lower --max-new-tokens")
    text = continue_prompt(m, prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                      seed=seed)
    summary = {"model": m.cfg.name, "prompt": prompt, "completion": text, "max_new_tokens": max_new_tokens,
               "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
    if out is not None:
        write_json(out / "generation.json", summary)
    emit(summary, as_json, prompt + text)
