"""`interp lost-in-middle`: recall by position of the relevant item, and the attention behind it."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import (emit, force_option, json_option, load_model_for_cli, model_option, out_option,
                        prepare_out, save_result, seed_option)


def _sizes(text: str) -> tuple[int, ...]:
    from interp.errors import InvalidInputError

    try:
        sizes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InvalidInputError(f"--n-items {text!r} must be comma-separated numbers such as 10,20,30.")
    if not sizes or min(sizes) < 1:
        raise InvalidInputError(f"--n-items {text!r} must list positive numbers such as 10,20,30.")
    return sizes


@click.command("lost-in-middle")
@model_option
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
@click.option("--batch-size", type=int, default=8, show_default=True)
@seed_option
@json_option
@out_option
@force_option
def lost_in_middle(model: str, task: str, file: Path | None, n_items: str, positions: str, n_examples: int,
                   query_aware: bool, repeat_gold: bool, mitigations: bool, no_generate: bool, batch_size: int,
                   seed: int, as_json: bool, out: Path | None, force: bool) -> None:
    """Sweep the gold item's position through the context (Liu et al. 2024) and explain it with attention."""
    from interp.analysis.recall.sweep import RecallParams, resolve_positions
    from interp.errors import InvalidInputError

    if file is not None and not file.is_file():
        raise InvalidInputError(f"{file} does not exist.")
    params = RecallParams(task=task, n_items=_sizes(n_items), positions=positions, n_examples=n_examples,
                          file=str(file) if file else None, query_aware=query_aware, repeat_gold=repeat_gold,
                          mitigations=mitigations, generate=not no_generate, batch_size=batch_size, seed=seed)
    for k in params.n_items if file is None else ():  # bad positions fail before the model loads
        resolve_positions(positions, k)
    out = prepare_out(out, force)
    from tqdm import tqdm

    from interp.analysis.recall.sweep import run_lost_in_middle

    m = load_model_for_cli(model)
    result = run_lost_in_middle(m, params, progress=None if as_json else tqdm)
    summary = result.to_json()
    save_result(result, out)
    emit(summary, as_json, result.summary_markdown())
