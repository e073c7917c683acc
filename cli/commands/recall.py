"""`interp lost-in-middle`: recall by position of the relevant item, and the attention behind it."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import model_options, output_options, run_analysis, seed_option, sweep_options


def _sizes(text: str) -> tuple[int, ...]:
    from interp.errors import InvalidInputError

    try:
        sizes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InvalidInputError(f"--n-items {text!r} must be comma-separated numbers such as 10,20,30.") from None
    if not sizes or min(sizes) < 1:
        raise InvalidInputError(f"--n-items {text!r} must list positive numbers such as 10,20,30.")
    return sizes


def recall_params(task, file, n_items, positions, n_examples, query_aware, repeat_gold, mitigations, no_generate,
                  max_new_tokens, batch_size, reuse_prefix, top_heads, n_boot, seed, **_):
    """The RecallParams these options stand for; bad positions fail here, before the model loads."""
    from interp.analysis.recall.params import RecallParams, resolve_positions
    from interp.errors import InvalidInputError

    if file is not None and not Path(file).is_file():
        raise InvalidInputError(f"{file} does not exist.")
    if file is not None:  # read it through once: a corrupt or malformed file is refused before the model loads
        from interp.analysis.recall.loaders import read_jsonl

        for _ in read_jsonl(file):
            pass
    from cli.checks import at_least

    at_least("--examples", n_examples)
    at_least("--batch-size", batch_size)
    at_least("--max-new-tokens", max_new_tokens)
    at_least("--top-heads", top_heads)
    at_least("--n-boot", n_boot)
    params = RecallParams(task=task, n_items=_sizes(n_items), positions=positions, n_examples=n_examples,
                          file=str(file) if file else None, query_aware=query_aware, repeat_gold=repeat_gold,
                          mitigations=mitigations, generate=not no_generate, max_new_tokens=max_new_tokens,
                          batch_size=batch_size, seed=seed, reuse_prefix=reuse_prefix, top_heads=top_heads,
                          n_boot=n_boot)
    for k in params.n_items if file is None else ():
        resolve_positions(positions, k)
    return params


@click.command("lost-in-middle")
@model_options
@click.option("--task", type=click.Choice(["kv", "kv-words", "qa"]), default="kv-words", show_default=True,
              help="UUID key-value, word key-value, or multi-document QA.")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The paper's released jsonl(.gz) file (qa_data/ for --task qa, kv_retrieval_data/ otherwise).")
@click.option("--n-items", default="10,20,30", show_default=True, help="Context sizes (ignored with --file).")
@click.option("--positions", default="5", show_default=True,
              help="Gold positions: 'all', a count of evenly spaced ones ('5'), or indices ('0,4,9'; -1 = last).")
@click.option("--examples", "n_examples", type=int, default=20, show_default=True, help="Base examples per size.")
@click.option("--query-aware", is_flag=True, help="Put the question before the context as well as after it.")
@click.option("--repeat-gold", is_flag=True, help="Repeat the gold item at the end of the context.")
@click.option("--mitigations", is_flag=True, help="Also run with each mitigation and report the change.")
@click.option("--no-generate", is_flag=True, help="Teacher-forced log-probabilities only (no greedy accuracy).")
@click.option("--max-new-tokens", type=int, default=None, help="Greedy tokens per answer (default: per task).")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Prompts per forward pass.")
@click.option("--reuse-prefix", is_flag=True, help="Run each base example's shared prefix once (dense sweeps).")
@click.option("--top-heads", type=int, default=10, show_default=True, help="Retrieval heads reported.")
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap resamples for the intervals.")
@seed_option
@output_options
@sweep_options
def lost_in_middle(**opts) -> None:
    """Sweep the gold item's position through the context (Liu et al. 2024) and explain it with attention.

    \b
    Example:
      interp lost-in-middle --task kv-words --n-items 10,20 --positions 5 --examples 8 --json
    """
    params = recall_params(**opts)  # bad options are refused before torch is imported
    from interp.analysis.recall.run import run_lost_in_middle

    run_analysis(run_lost_in_middle, params, opts)


lost_in_middle.params_from_options = recall_params
