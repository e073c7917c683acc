"""`interp trace` (causal tracing) and `interp neurons` (knowledge neurons with controls)."""

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

DEFAULT_PROMPT = "The {} is located in the city of"
DEFAULT_SUBJECT = "Eiffel Tower"


def _facts_option(f):
    f = click.option("--limit", type=int, default=None, help="Use only the first N facts of --facts.")(f)
    return click.option("--facts", "facts_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="A CounterFact-style fact file (JSON array or JSONL).")(f)


def _fact_options(f):
    f = click.option("--target", default=None, help="The true answer (default: the model's greedy answer).")(f)
    f = click.option("--subject", default=None, help=f"The subject inside the prompt [default: {DEFAULT_SUBJECT}].")(f)
    return click.option("--prompt", default=None,
                        help=f"Prompt with {{}} where the subject goes [default: {DEFAULT_PROMPT!r}].")(f)


def _load_facts(path: Path | None, limit: int | None) -> list:
    from interp.errors import InvalidInputError

    if path is None:
        if limit is not None:
            raise InvalidInputError("--limit needs --facts.")
        return []
    if not path.is_file():
        raise InvalidInputError(f"The fact file {path} does not exist.")
    if limit is not None and limit < 1:
        raise InvalidInputError(f"--limit must be at least 1, got {limit}.")
    from interp.analysis.facts.records import load_facts

    facts = load_facts(path)
    if not facts:
        raise InvalidInputError(f"The fact file {path} holds no facts.")
    return facts[:limit] if limit is not None else facts


def _resolve_fact(prompt: str | None, subject: str | None, target: str | None, facts: list) -> tuple:
    """The single prompt to analyse: as given, else the first fact of --facts, else the Eiffel Tower."""
    from interp.errors import InvalidInputError

    if (prompt is None) != (subject is None):
        raise InvalidInputError("Give --prompt and --subject together (or neither).")
    if prompt is not None:
        return prompt, subject, target, ()
    if facts:
        f = facts[0]
        return f.prompt, f.subject, target or f.target_true, tuple(f.paraphrase_prompts)
    return DEFAULT_PROMPT, DEFAULT_SUBJECT, target, ()


def _progress():
    from functools import partial

    from tqdm import tqdm

    return partial(tqdm, leave=False)


@click.command("trace")
@model_option
@_fact_options
@_facts_option
@click.option("--samples", type=int, default=10, show_default=True, help="Noise samples per fact.")
@click.option("--noise", type=float, default=3.0, show_default=True, help="Noise std in units of the embedding std.")
@click.option("--window", type=int, default=10, show_default=True, help="Layers restored together (MLP, attention).")
@seed_option
@json_option
@out_option
@force_option
def trace(model, prompt, subject, target, facts_path, limit, samples, noise, window, seed, as_json, out, force):
    """Causal tracing (Meng et al. 2022): corrupt the subject, restore one state, see p(answer) recover.

    With --facts, also traces each fact at its key tokens and averages the indirect effects.
    """
    from interp.analysis.facts.causal_trace import TraceParams
    from interp.analysis.facts.trace_result import run_trace

    facts = _load_facts(facts_path, limit)
    prompt, subject, target, _ = _resolve_fact(prompt, subject, target, facts)
    params = TraceParams(prompt=prompt, subject=subject, target=target, facts=tuple(facts), samples=samples,
                         noise=noise, window=window, seed=seed)
    out = prepare_out(out, force)
    m = load_model_for_cli(model)
    result = run_trace(m, params, progress=_progress())
    save_result(result, out)
    emit(result.to_json(), as_json, result.summary_markdown())


@click.command("neurons")
@model_option
@_fact_options
@click.option("--paraphrase", "paraphrases", multiple=True, help="Another prompt for the same fact (repeatable).")
@_facts_option
@click.option("--steps", type=int, default=20, show_default=True, help="Integrated-gradients steps.")
@click.option("--random-seeds", type=int, default=5, show_default=True, help="Random-neuron control draws.")
@seed_option
@json_option
@out_option
@force_option
def neurons(model, prompt, subject, target, paraphrases, facts_path, limit, steps, random_seeds, seed, as_json,
            out, force):
    """Knowledge neurons (Dai et al. 2022) by integrated gradients, with suppress / amplify controls.

    With --facts, each fact is analysed with its own paraphrases; otherwise --prompt with --paraphrase.
    """
    from interp.analysis.facts.neuron_controls import run_neurons
    from interp.analysis.facts.neurons import NeuronParams

    facts = _load_facts(facts_path, limit)
    if facts and prompt is None:
        params = NeuronParams(facts=tuple(facts), steps=steps, random_seeds=random_seeds, seed=seed)
    else:
        prompt, subject, target, para = _resolve_fact(prompt, subject, target, [])
        extra = {"unrelated": tuple((f.text, f.target_true) for f in facts[:8])} if facts else {}
        params = NeuronParams(prompt=prompt, subject=subject, target=target, paraphrases=tuple(paraphrases) or para,
                              steps=steps, random_seeds=random_seeds, seed=seed, **extra)
    out = prepare_out(out, force)
    m = load_model_for_cli(model)
    result = run_neurons(m, params, progress=_progress())
    save_result(result, out)
    emit(result.to_json(), as_json, result.summary_markdown())
