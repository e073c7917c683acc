"""`interp trace` (causal tracing) and `interp neurons` (knowledge neurons with controls)."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import model_options, output_options, run_analysis, seed_option, sweep_options

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
    from interp.analysis.facts.splits import load_fact_file

    facts = load_fact_file(path)
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


def trace_params(prompt, subject, target, facts_path, limit, sample, samples, noise, window, kinds, batch_size, seed,
                 **_):
    """The TraceParams these options stand for (fact file read and checked before the model loads)."""
    from interp.analysis.facts.params import TraceParams
    from interp.errors import InvalidInputError

    from cli.checks import at_least, finite

    finite("--noise", noise, 0.0, low_open=True)
    at_least("--samples", samples)
    at_least("--window", window)
    at_least("--batch-size", batch_size)
    at_least("--sample", sample)
    if sample is not None and facts_path is None:
        raise InvalidInputError("--sample needs --facts.")
    facts = _load_facts(facts_path, limit)
    prompt, subject, target, _ = _resolve_fact(prompt, subject, target, facts)
    return TraceParams(prompt=prompt, subject=subject, target=target, facts=tuple(facts), sample=sample,
                       samples=samples, noise=noise, window=window, seed=seed,
                       kinds=tuple(k.strip() for k in kinds.split(",")), batch_size=batch_size)


@click.command("trace")
@model_options
@_fact_options
@_facts_option
@click.option("--sample", type=int, default=None,
              help="Trace N facts of --facts drawn at random (--seed); sigma still from all their subjects.")
@click.option("--samples", type=int, default=10, show_default=True, help="Noise samples per fact.")
@click.option("--noise", type=float, default=3.0, show_default=True, help="Noise std in units of the embedding std.")
@click.option("--window", type=int, default=10, show_default=True, help="Layers restored together (MLP, attention).")
@click.option("--kinds", default="resid,mlp,attn", show_default=True, help="States to restore, comma-separated.")
@click.option("--batch-size", type=int, default=128, show_default=True, help="Restored runs per forward pass.")
@seed_option
@output_options
@sweep_options
def trace(**opts):
    """Causal tracing (Meng et al. 2022): corrupt the subject, restore one state, see p(answer) recover.

    With --facts, also traces each fact at its key tokens and averages the indirect effects.

    \b
    Example:
      interp trace --prompt "The {} is located in the city of" --subject "Eiffel Tower" --samples 3 --json
    """
    params = trace_params(**opts)  # bad options are refused before torch is imported
    from interp.analysis.facts.run import run_trace

    from cli.checks import checked

    run_analysis(checked(run_trace, trace_checks), params, opts)


def _longest(model, params) -> int:
    texts = [params.prompt.replace("{}", params.subject)] if params.prompt else []
    texts += [f.text for f in params.facts]
    return max((len(model.encode(t)) for t in texts), default=1)


def trace_checks(model, params) -> None:
    """The answer is one token (or say so); the corrupted run over every noise sample and each batch of
    restored runs fit in memory."""
    from interp import memory

    from cli.checks import single_token_note

    single_token_note(model, params.target)
    n = _longest(model, params)
    rows = max(params.samples, params.batch_size)
    memory.check(memory.forward_bytes(model, rows, n, logits=False), f"--samples {params.samples} with "
                 f"--batch-size {params.batch_size} on a {n}-token prompt", "lower --samples or --batch-size",
                 model.device)


trace.params_from_options = trace_params


def _split_parts(facts_path: Path | None, split_path: Path | None, limit: int | None) -> tuple[list, list]:
    """(test part, tuning part) of --facts by --split; without --split, (the facts, [])."""
    from interp.errors import InvalidInputError

    if split_path is None:
        return _load_facts(facts_path, limit), []
    if facts_path is None:
        raise InvalidInputError("--split needs --facts.")
    if limit is not None:
        raise InvalidInputError("--limit cannot be combined with --split; use --per-relation.")
    if not facts_path.is_file():
        raise InvalidInputError(f"The fact file {facts_path} does not exist.")
    from interp.analysis.facts.splits import load_part

    return load_part(facts_path, "test", split_path), load_part(facts_path, "tune", split_path)


def neuron_params(prompt, subject, target, paraphrases, facts_path, limit, steps, threshold, random_seeds, seed,
                  split_path=None, relations=None, per_relation=None, tune_per_relation=None, max_prompts=8,
                  heldout=0, n_unrelated=8, **_):
    """The NeuronParams these options stand for."""
    from interp.analysis.facts.params import NeuronParams

    from cli.checks import at_least, finite

    at_least("--steps", steps)
    finite("--threshold", threshold, 0.0, 1.0, low_open=True)
    at_least("--random-seeds", random_seeds)
    facts, tune = _split_parts(facts_path, split_path, limit)
    if facts and prompt is None:
        return NeuronParams(facts=tuple(facts), tune_facts=tuple(tune), steps=steps, threshold=threshold,
                            random_seeds=random_seeds, seed=seed, max_prompts=max_prompts, heldout=heldout,
                            relations=tuple(r.strip() for r in relations.split(",") if r.strip()) if relations else (),
                            per_relation=per_relation, tune_per_relation=tune_per_relation, n_unrelated=n_unrelated)
    given = prompt is not None
    prompt, subject, target, _ = _resolve_fact(prompt, subject, target, [])
    extra = {"unrelated": tuple((f.text, f.target_true) for f in facts[:8])} if facts else {}
    if paraphrases or given:  # the default fact keeps its default paraphrases
        extra["paraphrases"] = tuple(paraphrases)
    from interp.analysis.facts.params import DEFAULT_PARAPHRASES

    n_prompts = min(max_prompts, 1 + len(extra.get("paraphrases", DEFAULT_PARAPHRASES)))
    if heldout and n_prompts - heldout < 3:
        from interp.errors import InvalidInputError

        raise InvalidInputError(f"--heldout {heldout} leaves {n_prompts - heldout} of the {n_prompts} prompts for the "
                                "search; it needs at least 3 (give more --paraphrase options).")
    return NeuronParams(prompt=prompt, subject=subject, target=target, steps=steps, threshold=threshold,
                        random_seeds=random_seeds, seed=seed, max_prompts=max_prompts, heldout=heldout, **extra)


@click.command("neurons")
@model_options
@_fact_options
@click.option("--paraphrase", "paraphrases", multiple=True, help="Another prompt for the same fact (repeatable).")
@_facts_option
@click.option("--steps", type=int, default=20, show_default=True, help="Integrated-gradients steps.")
@click.option("--threshold", type=float, default=0.2, show_default=True,
              help="Keep units above this fraction of a prompt's largest attribution.")
@click.option("--random-seeds", type=int, default=5, show_default=True, help="Random-neuron control draws.")
@click.option("--split", "split_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A split file of --facts (experiments/data/splits/): p is tuned per relation on its tuning part "
              "and the neurons are found and tested on its test part.")
@click.option("--relations", default=None, help="Only the facts of these relations (comma-separated ids).")
@click.option("--per-relation", type=int, default=None, help="Facts drawn at random (--seed) per relation.")
@click.option("--tune-per-relation", type=int, default=None,
              help="Tuning facts drawn at random (--seed) per relation (with --split).")
@click.option("--max-prompts", type=int, default=8, show_default=True,
              help="Prompts per fact: its own, its paraphrases, then its relation's other templates.")
@click.option("--heldout", type=int, default=0, show_default=True,
              help="Of a fact's prompts, this many (drawn at random) are kept out of the search and only tested.")
@click.option("--unrelated", "n_unrelated", type=int, default=8, show_default=True,
              help="Unrelated facts (another relation) per fact in the controls.")
@seed_option
@output_options
@sweep_options
def neurons(**opts):
    """Knowledge neurons (Dai et al. 2022) by integrated gradients, with suppress / amplify controls.

    With --facts, each fact is analysed with its own prompt, its paraphrases and its relation's other templates
    (up to --max-prompts), and p is tuned per relation (on the tuning part with --split); otherwise --prompt
    with at least two --paraphrase.

    \b
    Example:
      interp neurons --steps 12 --json
      interp neurons --prompt "The capital of {} is" --subject Japan --paraphrase "Japan's capital is" \
          --paraphrase "The capital city of Japan is"
    """
    params = neuron_params(**opts)  # bad options are refused before torch is imported
    from interp.analysis.facts.run import run_neurons

    from cli.checks import checked

    run_analysis(checked(run_neurons, neuron_checks), params, opts)


def neuron_checks(model, params) -> None:
    """The answer is one token (or say so); integrated gradients' rows (one per step, with a backward pass
    through every layer) fit in memory."""
    from interp import memory

    from cli.checks import single_token_note

    single_token_note(model, params.target)
    texts = [params.prompt.replace("{}", params.subject)] if params.prompt else []
    texts += list(params.paraphrases) + [f.text for f in params.facts]
    n = max((len(model.encode(t)) for t in texts), default=1)
    rows = max(1, params.batch_rows // params.steps) * params.steps  # several prompts' steps per pass
    memory.check(memory.forward_bytes(model, rows, n, keep_layers=True), f"--steps {params.steps} on a "
                 f"{n}-token prompt (integrated gradients)", "lower --steps", model.device)


neurons.params_from_options = neuron_params
