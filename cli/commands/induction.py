"""`interp induction`: find induction heads, their circuit, and prove them by ablation."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import model_options, output_options, run_analysis, seed_option


def induction_params(model, batch, seq_len, top_k, seeds, seed, text_file, no_text, text_samples, text_tokens,
                     text_mode, peer, peer_bridge, peer_texts, peer_seq_len, threshold, prev_threshold, comp_sources,
                     circuit="weights", path_receivers=3, path_pairs=2, path_seq_len=12, ablation_seed=None, **_):
    """The InductionParams these options stand for (also used to check experiment specs' commands)."""
    from interp.analysis.induction.params import InductionParams
    from interp.errors import InvalidInputError

    if text_file is not None and not Path(text_file).exists():
        raise InvalidInputError(f"The text file {text_file} does not exist.")
    return InductionParams(batch=batch, seq_len=seq_len, top_k=top_k, seeds=seeds, seed=seed, text=not no_text,
                           text_path=str(text_file) if text_file else None, text_samples=text_samples,
                           text_tokens=text_tokens, text_mode=text_mode, peer=peer, peer_bridge=peer_bridge,
                           peer_texts=peer_texts, peer_seq_len=peer_seq_len, threshold=threshold,
                           prev_threshold=prev_threshold, comp_sources=comp_sources, circuit=circuit,
                           path_receivers=path_receivers, path_pairs=path_pairs, path_seq_len=path_seq_len,
                           ablation_seed=ablation_seed, model_name=model)


@click.command("induction")
@model_options
@click.option("--batch", type=int, default=16, show_default=True, help="Repeated random sequences per batch.")
@click.option("--seq-len", type=int, default=64, show_default=True, help="Length of r in [BOS] + r + r.")
@click.option("--top-k", type=int, default=5, show_default=True, help="Heads to ablate together.")
@click.option("--seeds", type=int, default=20, show_default=True, help="Random-head control draws.")
@seed_option
@click.option("--ablation-seed", type=int, default=None,
              help="Seed of the batch the top heads are ablated on (default: --seed + 1); the heads are selected on "
              "the --seed batch, so the ablation is measured on sequences they were not chosen on.")
@click.option("--text", "text_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Text file for the natural-text check (default: text the model generates, seeded).")
@click.option("--no-text", is_flag=True, help="Skip the natural-text check.")
@click.option("--text-samples", type=int, default=4, show_default=True, help="Generated texts for the text check.")
@click.option("--text-tokens", type=int, default=128, show_default=True, help="Tokens per text in the text check.")
@click.option("--text-mode", type=click.Choice(["zero", "mean"]), default="mean", show_default=True,
              help="Ablation used in the natural-text check.")
@click.option("--peer/--no-peer", default=True, show_default=True,
              help="Compare with TransformerLens' head detector.")
@click.option("--peer-bridge/--no-peer-bridge", default=True, show_default=True,
              help="Run the detector on a TransformerBridge of the same model (loads it through transformers).")
@click.option("--peer-texts", type=int, default=4, show_default=True, help="Word sequences for the peer comparison.")
@click.option("--peer-seq-len", type=int, default=32, show_default=True, help="Words per peer sequence.")
@click.option("--threshold", type=float, default=0.4, show_default=True,
              help="Induction score above which a head counts as induction-like (ARENA's line).")
@click.option("--prev-threshold", type=float, default=0.3, show_default=True,
              help="Previous-token score above which a head counts as a previous-token head (circuit summary).")
@click.option("--comp-sources", type=int, default=3, show_default=True,
              help="K-composition edges drawn into each top induction head.")
@click.option("--circuit", type=click.Choice(["weights", "path"]), default="weights", show_default=True,
              help="weights: K-composition read off the weights; path: also path-patch every earlier head into the "
              "top induction heads' keys, with the other senders as control.")
@click.option("--path-receivers", type=int, default=3, show_default=True,
              help="Top induction heads (outside layer 0) whose key inputs receive the senders.")
@click.option("--path-pairs", type=int, default=2, show_default=True, help="Repeated sequences for path patching.")
@click.option("--path-seq-len", type=int, default=12, show_default=True, help="Length of r for path patching.")
@output_options
def induction(**opts):
    """Score every head on [BOS] + r + r, read copying and K-composition off the weights, ablate the top
    heads against random heads from the same layers, and check natural text.

    \b
    Example:
      interp induction --model smollm2-135m --batch 4 --seq-len 40 --seeds 20 --json
      interp induction --circuit path      # also find what feeds the induction heads' keys
    """
    params = induction_params(**opts)  # bad options are refused before torch is imported
    from interp.analysis.induction.run import run_induction

    from cli.checks import checked

    run_analysis(checked(run_induction, induction_memory), params, opts)


def induction_memory(model, p) -> None:
    """The scored forward over (batch, 1 + 2 seq_len) with every layer's pattern hooked, before it runs."""
    from interp import memory
    from interp.errors import InvalidInputError

    n = 1 + 2 * p.seq_len
    if n > model.cfg.n_ctx:
        raise InvalidInputError(f"--seq-len {p.seq_len} makes {n}-token sequences, longer than {model.cfg.name}'s "
                                f"context of {model.cfg.n_ctx}; lower --seq-len.")
    memory.check(memory.forward_bytes(model, p.batch, n), f"--batch {p.batch} --seq-len {p.seq_len} "
                 f"({p.batch} sequences of {n} tokens)", "lower --seq-len or --batch", model.device)


induction.params_from_options = induction_params
