"""`interp edit` (one ROME edit: before/after, save, load, undo, export) and `interp edit-eval`
(CounterFact-style evaluation of ROME or MEMIT over a fact file)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from cli.common import emit, force_option, json_option, load_model_for_cli, model_option, out_option, prepare_out, save_result, seed_option


def _stats_options(f):
    f = click.option("--reference", is_flag=True,
                     help="The reference ROME/MEMIT update: delta at the mean key k* only, not also at the bare prompt's key.")(f)
    f = click.option("--stats-tokens", type=int, default=None,
                     help="Tokens of text for the key statistics C (default 4000, sampled from the model, cached).")(f)
    f = click.option("--corpus", type=click.Path(exists=True, path_type=Path), default=None,
                     help="A .txt file or folder for the statistics instead of text sampled from the model.")(f)
    return f


def _rome_params(layer, stats_tokens, corpus, reference):
    from interp.analysis.rome import ROMEParams, StatsParams

    stats = StatsParams()
    if stats_tokens is not None or corpus is not None:
        stats = StatsParams(corpus=str(corpus) if corpus else None, n_tokens=stats_tokens or stats.n_tokens)
    return ROMEParams(layer=layer, stats=stats, fit_bare_key=not reference, value_through_update=not reference)


def _probe(m, request, true_answer: str | None, gen_tokens: int) -> dict:
    from interp.analysis.rome.evaluate import target_nll

    targets = [request.target_new] + ([true_answer] if true_answer else [])
    nll = target_nll(m, [request.text] * len(targets), targets)
    out = {"p_new": math.exp(-float(nll[0]))}
    if true_answer:
        out["p_true"] = math.exp(-float(nll[1]))
    out["generation"] = m.generate(request.text, max_new_tokens=gen_tokens)
    return out


def _first_word(text: str) -> str | None:
    import re

    match = re.match(r"\s*([\w][\w'\-]*(?: [A-Z][\w'\-]*)*)", text)
    return match.group(1) if match else None


@click.command()
@model_option
@click.option("--prompt", default=None, help='The prompt with "{}" where the subject goes.')
@click.option("--subject", default=None, help="The subject whose fact is rewritten.")
@click.option("--target", default=None, help="The new answer (without a leading space).")
@click.option("--layer", type=int, default=None, help="Layer to edit (default: per model, see benchmarks/rome.md).")
@click.option("--save", "save", type=click.Path(path_type=Path), default=None, help="Write the edit to this new file.")
@click.option("--load", "load", type=click.Path(path_type=Path), default=None, help="Apply an edit saved with --save.")
@click.option("--undo", is_flag=True, help="Undo the edit at the end and show the original weights are back.")
@click.option("--export", type=click.Path(path_type=Path), default=None, help="Write the edited model (safetensors) into this new folder.")
@click.option("--gen-tokens", type=int, default=20, show_default=True)
@_stats_options
@json_option
def edit(model, prompt, subject, target, layer, save, load, undo, export, gen_tokens, stats_tokens, corpus, reference, as_json):
    """Rewrite one fact with ROME and show the model before and after."""
    import torch

    from interp.analysis.rome import Edit, EditRequest, check_target, export_model, rome_edit
    from interp.errors import EditError

    if save is not None and save.exists():
        raise EditError(f"{save} already exists; choose another file name (edits are never overwritten).")
    if export is not None and export.exists():
        raise EditError(f"{export} already exists; export into a new folder.")
    request = None
    if load is None:
        if prompt is None or subject is None or target is None:
            raise EditError("Give --prompt, --subject and --target (or --load FILE).")
        request = EditRequest(prompt, subject, target)  # checks the prompt, subject and target before loading
    m = load_model_for_cli(model)
    if load is not None:
        the_edit = Edit.load(load, m)
        request = the_edit.requests[0]
    else:
        check_target(m, request)
        click.echo("Computing the ROME edit (statistics are cached after the first run)...", err=True)
        the_edit = rome_edit(m, request, _rome_params(layer, stats_tokens, corpus, reference), apply=False)
    original = {d.layer: m.blocks[d.layer].mlp.w_out.detach().clone() for d in the_edit.deltas}
    true_answer = request.target_true or _first_word(m.generate(request.text, max_new_tokens=5))
    before = _probe(m, request, true_answer, gen_tokens)
    the_edit.apply(m)
    after = _probe(m, request, true_answer, gen_tokens)
    summary = {"model": m.cfg.name, "request": request.to_dict(), "true_answer": true_answer,
               "layers": the_edit.layers, "before": before, "after": after, "info": the_edit.info}
    if export is not None:
        summary["exported"] = str(export_model(m, export))
    if save is not None:
        summary["saved"] = str(the_edit.save(save))
    if undo:
        the_edit.undo(m)
        restored = all(torch.equal(m.blocks[l].mlp.w_out, w) for l, w in original.items())
        summary["undo"] = {"weights_restored_exactly": restored,
                           "generation": m.generate(request.text, max_new_tokens=gen_tokens)}
    lines = [f"{request.text!r}  (layer {', '.join(map(str, the_edit.layers))})"]
    for label, r in (("before", before), ("after", after)):
        probs = f"p({request.target_new})={r['p_new']:.3f}" + (f"  p({true_answer})={r['p_true']:.3f}" if true_answer else "")
        lines.append(f"{label:>6}: {probs}  ->{r['generation']!r}")
    if "undo" in summary:
        lines.append(f"  undo: weights restored exactly: {summary['undo']['weights_restored_exactly']}  ->{summary['undo']['generation']!r}")
    for key in ("saved", "exported"):
        if key in summary:
            lines.append(f"{key}: {summary[key]}")
    emit(summary, as_json, "\n".join(lines))


@click.command("edit-eval")
@model_option
@click.option("--facts", type=click.Path(path_type=Path), required=True, help="CounterFact-style JSON/JSONL fact file.")
@click.option("--limit", type=int, default=None, help="Only the first N facts (of those the model knows).")
@click.option("--sample", type=int, default=None, help="N facts drawn at random (seeded by --seed) instead of the first N.")
@click.option("--all-facts", is_flag=True, help="Also edit facts the model does not know (greedy answer not the true one).")
@click.option("--method", type=click.Choice(["rome", "memit"]), default="rome", show_default=True)
@click.option("--edits", type=int, default=1, show_default=True,
              help="Facts edited together before evaluation: sequential ROME edits, or one MEMIT batch.")
@click.option("--layer", type=int, default=None, help="ROME layer (default per model).")
@click.option("--layers", default=None, help="MEMIT layers, comma-separated (default per model).")
@click.option("--gen-tokens", type=int, default=30, show_default=True, help="Tokens generated per prompt for fluency.")
@_stats_options
@seed_option
@json_option
@out_option
@force_option
def edit_eval(model, facts, limit, sample, all_facts, method, edits, layer, layers, gen_tokens, stats_tokens, corpus, reference, seed, as_json, out, force):
    """Edit each fact and measure efficacy, paraphrase, neighbourhood and fluency."""
    from tqdm import tqdm

    from interp.analysis.facts.records import load_facts
    from interp.analysis.rome import EditEvalParams, MEMITParams, run_edit_eval
    from interp.errors import InvalidInputError

    if edits < 1:
        raise InvalidInputError("--edits must be at least 1.")
    if sample is not None and sample < 1:
        raise InvalidInputError("--sample must be at least 1.")
    records = load_facts(facts)  # format errors before the model loads
    out = prepare_out(out, force)
    rp = _rome_params(layer, stats_tokens, corpus, reference)
    try:
        layer_tuple = tuple(int(x) for x in layers.split(",")) if layers else None
    except ValueError:
        raise InvalidInputError(f"--layers must be comma-separated integers, got {layers!r}.") from None
    params = EditEvalParams(facts=str(facts), limit=limit, sample=sample, known_only=not all_facts, method=method, edits=edits, rome=rp,
                            memit=MEMITParams(layers=layer_tuple, rome=rp), gen_tokens=gen_tokens, seed=seed)
    m = load_model_for_cli(model)
    result = run_edit_eval(m, params, records=records, progress=lambda **kw: tqdm(file=click.get_text_stream("stderr"), **kw))
    summary = result.to_json()
    save_result(result, out)
    emit(summary, as_json, result.summary_markdown())
