"""`interp generate`: continue a prompt."""

from __future__ import annotations

import click

from cli.common import emit, json_option, load_model_for_cli, model_option, out_option, prepare_out, force_option, write_json


@click.command()
@model_option
@click.argument("prompt")
@click.option("--max-new-tokens", "-n", type=int, default=30, show_default=True)
@click.option("--temperature", "-t", type=float, default=0.0, show_default=True, help="0 is greedy.")
@click.option("--top-k", type=int, default=None)
@click.option("--top-p", type=float, default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
@out_option
@force_option
def generate(model: str, prompt: str, max_new_tokens: int, temperature: float, top_k, top_p, seed: int,
             as_json: bool, out, force: bool) -> None:
    """Continue PROMPT with MODEL (KV cache; greedy unless --temperature > 0)."""
    from interp.errors import InvalidInputError
    from interp.model.generate import check_sampling

    if not prompt.strip():
        raise InvalidInputError("The prompt is empty; give some text.")
    check_sampling(max_new_tokens, temperature, top_k, top_p)  # before the model loads
    out = prepare_out(out, force)
    m = load_model_for_cli(model)
    text = m.generate(prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                      seed=seed)
    summary = {"model": m.cfg.name, "prompt": prompt, "completion": text, "max_new_tokens": max_new_tokens,
               "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
    if out is not None:
        write_json(out / "generation.json", summary)
    emit(summary, as_json, prompt + text)
