"""`interp edit-scale`: how a model degrades as edits pile up, per editor (ROME, MEMIT, AlphaEdit, FT, FT-L).
Only parses and renders: the edits and measurements are `interp.analysis.rome.scale.run_edit_scale`. The
editor options here are shared with `interp edit --facts` (cli/commands/edit.py)."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import model_options, output_options, run_analysis, seed_option

EDITORS = ("rome", "memit", "alphaedit", "ft", "ft-l")


def variant_options(f):
    """--reference / --ours: which variant of each editor. Without either, each editor is the one that won on the
    test part of known_edits (the original where they tied): the original ROME, our MEMIT."""
    f = click.option("--ours", is_flag=True, help="Our ROME and MEMIT (edit.py, value.py): our update and v*/z "
                     "objective. The default for MEMIT already.")(f)
    return click.option("--reference", is_flag=True, help="The original ROME and MEMIT (our re-implementations; "
                        "ROME's update equals the authors' within 1e-5 on 5 facts): their update and v*/z "
                        "objective. The default for ROME already.")(f)


def editor_options(f):
    """The options of the editors beyond ROME's own (--layer, --stats-tokens, --corpus, --reference, --ours live
    with the command), and of the safety rails."""
    f = click.option("--layers", default=None, help="MEMIT / AlphaEdit layers, comma-separated (default per model).")(f)
    f = click.option("--null-threshold", type=float, default=None,
                     help="AlphaEdit: singular values of the key statistics below this span the null space "
                          "(default 0.02, the authors').")(f)
    f = click.option("--null-relative", type=float, default=None,
                     help="AlphaEdit: the threshold as a fraction of the largest singular value instead.")(f)
    f = click.option("--alpha-l2", type=float, default=None, help="AlphaEdit's ridge L2 (default 10, the authors').")(f)
    f = click.option("--ft-eps", type=float, default=None,
                     help="FT-L's bound on each weight's change (default 5e-4, the ROME paper's).")(f)
    f = click.option("--collapse-factor", type=float, default=None,
                     help="Held-out perplexity above this many times the unedited model's counts as collapse "
                          "(default 10).")(f)
    f = click.option("--on-outlier", type=click.Choice(["flag", "stop"]), default=None,
                     help="An update norm far outside the earlier ones: flag it and apply it (default), or stop.")(f)
    f = click.option("--heldout", type=click.Path(path_type=Path), default=None,
                     help="A .txt file for the perplexity (default: experiments/data/heldout/public_domain.txt).")(f)
    f = click.option("--check-every", type=int, default=None, help="Steps between perplexity (collapse) checks.")(f)
    return f


def parse_layers(layers: str | None) -> tuple[int, ...] | None:
    from interp.errors import InvalidInputError

    from cli.checks import at_least

    try:
        out = tuple(int(x) for x in layers.split(",")) if layers else None
    except ValueError:
        raise InvalidInputError(f"--layers must be comma-separated integers, got {layers!r}.") from None
    if out is not None and len(set(out)) != len(out):
        raise InvalidInputError(f"--layers names a layer twice: {layers!r}.")
    for value in out or ():
        at_least("--layers", value, 0)
    return out


def editor_params(rp, reference: bool, layers=None, null_threshold=None, null_relative=None, alpha_l2=None,
                  ft_eps=None, collapse_factor=None, on_outlier=None, **_):
    """EditorParams from ROME's params (`rp`, built by the command) and the options of `editor_options`."""
    from interp.analysis.rome.alphaedit import AlphaEditParams
    from interp.analysis.rome.finetune import FTParams
    from interp.analysis.rome.session import EditorParams

    from cli.checks import finite
    from cli.commands.edit import memit_params

    finite("--null-threshold", null_threshold, 0, low_open=True)
    finite("--null-relative", null_relative, 0, 1, low_open=True)
    finite("--alpha-l2", alpha_l2, 0)
    finite("--ft-eps", ft_eps, 0, low_open=True)
    finite("--collapse-factor", collapse_factor, 1, low_open=True)
    memit = memit_params(rp, parse_layers(layers), reference)
    alpha = AlphaEditParams(memit=memit, **{k: v for k, v in (("threshold", null_threshold), ("l2", alpha_l2),
                                                            ("relative_threshold", null_relative)) if v is not None})
    ft = FTParams(layer=rp.layer, **({"norm_constraint": ft_eps} if ft_eps is not None else {}))
    rails = {k: v for k, v in (("collapse_factor", collapse_factor), ("on_outlier", on_outlier)) if v is not None}
    return EditorParams(rome=rp, memit=memit, alphaedit=alpha, ft=ft, **rails)


def _ints(option: str, text: str) -> tuple[int, ...]:
    from interp.errors import InvalidInputError

    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise InvalidInputError(f"{option} must be comma-separated integers, got {text!r}.") from None


def edit_scale_params(facts, methods, checkpoints, batch_size, all_facts, sample, controls, heldout, heldout_tokens,
                      gen_prompts, gen_tokens, check_every, layer, stats_tokens, corpus, reference, seed,
                      max_minutes=None, ours=False, **opts):
    """The EditScaleParams these options stand for."""
    from interp.analysis.rome.scale import EditScaleParams
    from interp.errors import InvalidInputError

    from cli.checks import at_least, finite
    from cli.commands.edit import _rome_params

    for name, value in (("--batch-size", batch_size), ("--heldout-tokens", heldout_tokens),
                        ("--check-every", check_every), ("--sample", sample)):
        at_least(name, value)
    for name, value in (("--controls", controls), ("--gen-prompts", gen_prompts), ("--gen-tokens", gen_tokens)):
        at_least(name, value, 0)
    finite("--max-minutes", max_minutes, 0, low_open=True)
    names = tuple(m.strip() for m in methods.split(",") if m.strip())
    unknown = [m for m in names if m not in EDITORS]
    if unknown or not names:
        raise InvalidInputError(f"--methods takes editors from {', '.join(EDITORS)}, got {methods!r}.")
    rp = _rome_params(layer, stats_tokens, corpus, reference, 0, ours=ours)
    return EditScaleParams(facts=str(facts), methods=names, checkpoints=_ints("--checkpoints", checkpoints),
                           batch_size=batch_size, known_only=not all_facts, sample=sample, n_control=controls,
                           heldout=str(heldout) if heldout else None, heldout_tokens=heldout_tokens,
                           n_gen_prompts=gen_prompts, gen_tokens=gen_tokens, check_every=check_every or 1,
                           max_minutes=max_minutes, seed=seed,
                           editors=editor_params(rp, reference, **opts))


@click.command("edit-scale")
@model_options
@click.option("--facts", type=click.Path(path_type=Path), required=True, help="CounterFact-style JSON/JSONL fact file.")
@click.option("--methods", default="rome,memit,alphaedit,ft-l", show_default=True,
              help=f"Editors, comma-separated, each from the unedited model ({', '.join(EDITORS)}).")
@click.option("--checkpoints", default="1,10,100,1000", show_default=True,
              help="Edit counts at which the model is measured; the last is how many facts are edited.")
@click.option("--batch-size", type=int, default=100, show_default=True, help="MEMIT / AlphaEdit requests per step.")
@click.option("--all-facts", is_flag=True, help="Also edit facts the model does not know.")
@click.option("--sample", type=int, default=None, help="Draw the facts at random (seeded) instead of in file order.")
@click.option("--controls", type=int, default=50, show_default=True, help="Never-edited facts for the accuracy.")
@click.option("--heldout-tokens", type=int, default=1024, show_default=True, help="Tokens of the held-out text read.")
@click.option("--gen-prompts", type=int, default=4, show_default=True, help="Prompts for fluency (0: not measured).")
@click.option("--gen-tokens", type=int, default=50, show_default=True, help="Tokens sampled per fluency prompt.")
@click.option("--layer", type=int, default=None, help="ROME / FT layer (default per model).")
@click.option("--stats-tokens", type=int, default=None, help="Tokens of text for the key statistics (default 4000).")
@click.option("--corpus", type=click.Path(exists=True, path_type=Path), default=None,
              help="A .txt file or folder for the statistics instead of text sampled from the model.")
@variant_options
@click.option("--max-minutes", type=float, default=None,
              help="Per editor: stop after a checkpoint when the next would end past this many minutes.")
@editor_options
@seed_option
@output_options
def edit_scale(**opts):
    """Edit 1, 10, 100, 1,000 facts with each editor and measure what it costs the model.

    \b
    Example:
      interp edit-scale --facts experiments/data/facts.json --methods rome,memit --checkpoints 1,10 --out runs/scale
    """
    from interp.analysis.facts.records import load_facts
    from interp.analysis.rome.scale import run_edit_scale

    from cli.checks import checked

    params = edit_scale_params(**opts)
    records = load_facts(opts["facts"])  # format errors before the model loads
    run_analysis(checked(run_edit_scale, scale_layer_check), params, opts, records=records)


def scale_layer_check(model, params) -> None:
    """The layers exist, checked before any statistics are computed."""
    from cli.checks import layers_exist

    layers_exist(model, "--layers", params.editors.memit.layers)
    if params.editors.rome.layer is not None:
        layers_exist(model, "--layer", [params.editors.rome.layer])


edit_scale.params_from_options = edit_scale_params
