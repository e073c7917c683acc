"""`interp edit` (one ROME edit: before/after, save, load, undo, export) and `interp edit-eval`
(CounterFact-style evaluation of ROME or MEMIT over a fact file). Both only parse and render: the edit,
its probes and the undo check are `interp.analysis.rome.run_edit` / `run_edit_eval`."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import model_options, output_options, run_analysis, seed_option, sweep_options


def _stats_options(f):
    from cli.commands.scale import variant_options

    f = variant_options(f)
    f = click.option("--update", type=click.Choice(["ours", "original", "r-rome"]), default=None,
                     help="ROME's rank-one update only: original (the default; our re-implementation of the "
                          "authors'), ours, r-rome (the paper's equation); the v* objective stays the variant's "
                          "(the original's unless --ours).")(f)
    f = click.option("--stats-tokens", type=int, default=None,
                     help="Tokens of text for the key statistics C (default 4000, sampled from the model, cached).")(f)
    f = click.option("--corpus", type=click.Path(exists=True, path_type=Path), default=None,
                     help="A .txt file or folder for the statistics instead of text sampled from the model.")(f)
    return f


def _rome_params(layer, stats_tokens, corpus, reference, seed, update=None, ours=False):
    """ROME's params: the original (the default, or --reference) or ours (--ours); --update swaps the update only."""
    from interp.analysis.rome import ROMEParams, StatsParams
    from interp.errors import InvalidInputError

    from cli.checks import at_least, text_source

    at_least("--stats-tokens", stats_tokens)
    at_least("--layer", layer, 0)
    text_source("--corpus", corpus)
    if reference and ours:
        raise InvalidInputError("Give --reference or --ours, not both.")

    stats = StatsParams(corpus=str(corpus) if corpus else None, n_tokens=stats_tokens or StatsParams.n_tokens,
                        seed=seed)
    common = dict(layer=layer, stats=stats, context_seed=seed, **({"update": update} if update else {}))
    return ROMEParams.ours(**common) if ours else ROMEParams.reference(**common)


def memit_params(rp, layers: tuple[int, ...] | None, reference: bool):
    """MEMIT's params beside ROME's (`rp`: its statistics and context seed): ours (the default) or, with
    --reference, the original's contexts, clamp, steps and objective."""
    from dataclasses import replace

    from interp.analysis.rome import MEMITParams

    base = MEMITParams.reference() if reference else MEMITParams()
    return replace(base, layers=layers).with_rome(stats=rp.stats, context_seed=rp.context_seed)


def edit_params(prompt, subject, target, layer, save, load, undo, export, gen_tokens, stats_tokens, corpus,
                reference, seed, update=None, facts=None, ours=False, **opts):
    """The EditParams these options stand for (EditFactsParams with --facts); files that would be overwritten
    are refused before loading."""
    from interp.analysis.rome.key import EditRequest
    from interp.analysis.rome.params import EditParams
    from interp.errors import EditError

    from cli.checks import at_least

    at_least("--gen-tokens", gen_tokens)
    if save is not None and (save.exists() or save.is_symlink()):
        raise EditError(f"{save} already exists; choose another file name (edits are never overwritten).")
    if export is not None and (export.exists() or export.is_symlink()):
        raise EditError(f"{export} already exists; export into a new folder.")

    if facts is not None:
        return edit_facts_params(facts, prompt, subject, target, load, export, save, undo, layer, stats_tokens,
                                 corpus, reference, seed, update, ours=ours, **opts)
    if load is None and None not in (prompt, subject, target):
        EditRequest(prompt, subject, target)  # checks the prompt, subject and target before loading
    return EditParams(prompt=prompt, subject=subject, target=target, load=str(load) if load else None,
                      save=str(save) if save else None, export=str(export) if export else None, undo=undo,
                      gen_tokens=gen_tokens,
                      rome=_rome_params(layer, stats_tokens, corpus, reference, seed, update, ours))


def edit_facts_params(facts, prompt, subject, target, load, export, save, undo, layer, stats_tokens, corpus,
                      reference, seed, update, method="memit", batch_size=100, limit=None, check_every=None,
                      heldout=None, ours=False, **opts):
    """`edit --facts`: every request of a fact file with one editor (EditFactsParams)."""
    from interp.analysis.rome.scale import EditFactsParams
    from interp.errors import InvalidInputError

    from cli.checks import at_least
    from cli.commands.scale import editor_params

    if any(v is not None for v in (prompt, subject, target, load, export)):
        raise InvalidInputError("--facts writes the fact file's requests; leave out --prompt, --subject, --target, "
                                "--load and --export.")
    at_least("--batch-size", batch_size)
    at_least("--limit", limit)
    at_least("--check-every", check_every)
    rp = _rome_params(layer, stats_tokens, corpus, reference, seed, update, ours)
    return EditFactsParams(facts=str(facts), method=method, batch_size=batch_size, limit=limit,
                           save=str(save) if save else None, undo=undo, heldout=str(heldout) if heldout else None,
                           check_every=check_every or 10, seed=seed, editors=editor_params(rp, reference, **opts))


def _facts_options(f):
    from cli.commands.scale import EDITORS, editor_options

    f = editor_options(f)
    f = click.option("--limit", type=int, default=None, help="With --facts: only the first N facts.")(f)
    f = click.option("--batch-size", type=int, default=100, show_default=True,
                     help="With --facts: MEMIT / AlphaEdit requests per update.")(f)
    f = click.option("--method", type=click.Choice(EDITORS), default="memit", show_default=True,
                     help="With --facts: the editor (ROME, FT and FT-L write one request after another).")(f)
    return click.option("--facts", type=click.Path(path_type=Path), default=None,
                        help="Write every request of this CounterFact-style fact file (one edit file with --save).")(f)


@click.command()
@model_options
@click.option("--prompt", default=None, help='The prompt with "{}" where the subject goes.')
@click.option("--subject", default=None, help="The subject whose fact is rewritten.")
@click.option("--target", default=None, help="The new answer (without a leading space).")
@click.option("--layer", type=int, default=None, help="Layer to edit (default: per model, see benchmarks/rome.md).")
@click.option("--save", "save", type=click.Path(path_type=Path), default=None, help="Write the edit to this new file.")
@click.option("--load", "load", type=click.Path(path_type=Path), default=None, help="Apply an edit saved with --save.")
@click.option("--undo", is_flag=True, help="Undo the edit at the end and show the original weights are back.")
@click.option("--export", type=click.Path(path_type=Path), default=None,
              help="Write the edited model (safetensors) into this new folder.")
@click.option("--gen-tokens", type=int, default=20, show_default=True, help="Tokens generated before and after.")
@_stats_options
@_facts_options
@seed_option
@output_options
def edit(**opts):
    """Rewrite one fact with ROME (the original algorithm; --ours for ours) and show the model before and after;
    or, with --facts, every fact of a file.

    \b
    Example:
      interp edit --prompt "The {} is located in the city of" --subject "Eiffel Tower" --target Rome --undo
      interp edit --facts experiments/data/facts.json --method memit --batch-size 50 --save facts.edit --undo
    """
    from cli.checks import checked

    params = edit_params(**opts)
    if opts["facts"] is not None:
        from interp.analysis.facts.records import load_facts
        from interp.analysis.rome.scale import run_edit_facts

        from cli.commands.scale import scale_layer_check

        records = load_facts(opts["facts"])  # format errors before the model loads
        run_analysis(checked(run_edit_facts, scale_layer_check), params, opts, human=lambda r: r.render(),
                     records=records)
        return
    from interp.analysis.rome.run import run_edit

    run_analysis(checked(run_edit, edit_layer_check), params, opts, human=lambda r: r.render())


def edit_layer_check(model, params) -> None:
    from cli.checks import layers_exist

    if params.rome.layer is not None:
        layers_exist(model, "--layer", [params.rome.layer])


edit.params_from_options = edit_params


def edit_eval_params(facts, limit, sample, all_facts, method, edits, layer, layers, gen_tokens, gen_prompts,
                     stats_tokens, corpus, reference, seed, update=None, ours=False, **_):
    """The EditEvalParams these options stand for."""
    from interp.analysis.rome import EditEvalParams

    from cli.checks import at_least
    from cli.commands.scale import parse_layers

    at_least("--limit", limit)
    at_least("--gen-tokens", gen_tokens)
    at_least("--gen-prompts", gen_prompts, 0)
    rp = _rome_params(layer, stats_tokens, corpus, reference, 0, update, ours)
    return EditEvalParams(facts=str(facts), limit=limit, sample=sample, known_only=not all_facts, method=method,
                          edits=edits, rome=rp, memit=memit_params(rp, parse_layers(layers), reference),
                          gen_tokens=gen_tokens, n_gen_prompts=gen_prompts, seed=seed)


@click.command("edit-eval")
@model_options
@click.option("--facts", type=click.Path(path_type=Path), required=True, help="CounterFact-style JSON/JSONL fact file.")
@click.option("--limit", type=int, default=None, help="Only the first N facts (of those the model knows).")
@click.option("--sample", type=int, default=None,
              help="N facts drawn at random (seeded by --seed) instead of the first N.")
@click.option("--split", "split_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A split file of --facts (experiments/data/splits/): only its test part is edited.")
@click.option("--all-facts", is_flag=True,
              help="Also edit facts the model does not know (greedy answer not the true one).")
@click.option("--method", type=click.Choice(["rome", "memit"]), default="rome", show_default=True,
              help="ROME (one rank-one edit per fact) or MEMIT (one update for a batch of facts).")
@click.option("--edits", type=int, default=1, show_default=True,
              help="Facts edited together before evaluation: sequential ROME edits, or one MEMIT batch.")
@click.option("--layer", type=int, default=None, help="ROME layer (default per model).")
@click.option("--layers", default=None, help="MEMIT layers, comma-separated (default per model).")
@click.option("--gen-tokens", type=int, default=100, show_default=True,
              help="New tokens generated per generation prompt for fluency (the paper: 100).")
@click.option("--gen-prompts", type=int, default=2, show_default=True,
              help="Generation prompts per fact for fluency (0: fluency not measured).")
@_stats_options
@seed_option
@output_options
@sweep_options
def edit_eval(**opts):
    """Edit each fact and measure efficacy, paraphrase, neighbourhood and fluency.

    \b
    Example:
      interp edit-eval --facts experiments/data/facts.json --limit 3 --method rome --json
    """
    params = edit_eval_params(**opts)  # bad options are refused before torch is imported
    records = edit_eval_records(opts["facts"], opts.get("split_path"))  # format errors before the model loads
    from interp.analysis.rome.run import run_edit_eval

    from cli.checks import checked

    run_analysis(checked(run_edit_eval, edit_eval_layer_check), params, opts, records=records)


def edit_eval_records(facts: Path, split_path: Path | None) -> list:
    """The facts of --facts, or only the test part of them by --split."""
    if split_path is None:
        from interp.analysis.facts.records import load_facts

        return load_facts(facts)
    from interp.analysis.facts.splits import load_part
    from interp.errors import InvalidInputError

    if not Path(split_path).is_file():
        raise InvalidInputError(f"The split file {split_path} does not exist.")
    return load_part(facts, "test", split_path)


def edit_eval_layer_check(model, params) -> None:
    """The layers exist, checked before any statistics are computed."""
    from cli.checks import layers_exist

    if params.method == "memit":
        layers_exist(model, "--layers", params.memit.layers)
    if params.rome.layer is not None:
        layers_exist(model, "--layer", [params.rome.layer])


edit_eval.params_from_options = edit_eval_params
