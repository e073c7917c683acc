"""The paper's KV figure on its own 75-key file, run one base example at a time so a run can stop and resume.

Liu et al. (TACL 2024) move the queried pair of each 75-key JSON object to positions 0, 24, 49 and 74 and
score the greedy answer (the value is a substring of the answer's first line, after the SQuAD normalisation
of their ``best_subspan_em``). A 75-key prompt is ~5.4k tokens, about a minute of one CPU core on SmolLM2,
so the full spec (``experiments/lost-in-middle-kv75.toml``: 43 examples x 4 positions) takes hours. This
driver runs exactly the spec's scoring (``evaluate.score_examples`` with the spec's parameters) one base
example at a time, in file order, appending each example's four scores to ``parts.jsonl`` with the git
commit that made them; it stops before starting an example past ``--until`` and, on a later call, skips
the examples already done. Several workers may share one ``--out`` (one core each): a worker claims an
example with an exclusive lock that the system drops if the worker dies, so no example is run twice and a
killed worker's example is taken up again. What has been completed, as far as the first gap in file order,
is then reduced by the analysis' own ``reduce_scores`` and written in the analysis' result format
(``summary.md``, ``curves.csv``, figures), with ``n_examples`` set to that count, so every point has the same
n and the examples are always the file's first n.

Which examples are run does not depend on any answer: always the file's first n, in its order.

    python -m interp.analysis.recall.kv75 --model smollm2-135m --n 43 --until 01:40 \\
        --out experiments/results/lost-in-middle-kv75/smollm2-135m

(run it twice side by side, each with ``OMP_NUM_THREADS=1``, to use two cores).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from interp.analysis.recall.evaluate import Score, score_examples
from interp.analysis.recall.params import RecallParams, resolve_positions
from interp.analysis.recall.prompts import RecallExample
from interp.errors import InvalidInputError

REPO = Path(__file__).resolve().parents[3]
KV_75_REL = "experiments/data/lost_in_the_middle/kv-retrieval-75_keys.jsonl.gz"
PAPER_POSITIONS = "0,24,49,74"  # the paper's gold positions for 75 keys (its scripts' --gold-index values)
# A 36-character UUID is 31-36 tokens in SmolLM2's and Gemma-3's tokenizers, plus the opening ' "': the
# analysis' default of 32 greedy tokens would cut most values short, so the paper's rule could never match.
KV_NEW_TOKENS = 40


def spec_params(n_examples: int, seed: int = 0, n_boot: int = 1000) -> RecallParams:
    """The parameters of ``experiments/lost-in-middle-kv75.toml`` for n base examples."""
    return RecallParams(task="kv", n_items=(75,), positions=PAPER_POSITIONS, n_examples=n_examples, file=KV_75_REL,
                        generate=True, max_new_tokens=KV_NEW_TOKENS, batch_size=1, seed=seed, reuse_prefix=True,
                        n_boot=n_boot)


def code_commit(paths: Sequence[str] = ("interp/analysis/recall", "interp/model", "interp/errors.py")) -> str:
    """The checked-out commit, with "+dirty" when files under `paths` (by default the code that computes the
    recall results) differ from it ("unknown" without git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def score_to_json(s: Score) -> dict:
    out = dataclasses.asdict(s)
    for k in ("gold_attention", "distractor_attention"):
        out[k] = None if out[k] is None else np.asarray(out[k]).tolist()
    return out


def score_from_json(d: dict) -> Score:
    d = dict(d)
    for k in ("gold_attention", "distractor_attention"):
        d[k] = None if d[k] is None else np.asarray(d[k], dtype=float)
    return Score(**d)


def base_examples(params: RecallParams) -> list[RecallExample]:
    from interp.analysis.recall.loaders import load_kv_file

    return load_kv_file(REPO / params.file, limit=params.n_examples)


def read_parts(path: Path) -> dict[str, dict]:
    """example_id -> its line of parts.jsonl (the last one wins)."""
    from interp.jsonio import read_jsonl_by

    return read_jsonl_by(path, "example_id")


def claimed(out: Path, example_id: str):
    """A context that holds `example_id` for the run writing into `out` (it yields True), or yields False when
    another live worker holds it (`diskcache.one_writer` without waiting). The lock files live in the temporary
    directory, not among the results."""
    from interp.diskcache import one_writer

    locks = Path(tempfile.gettempdir()) / ("interp-kv75-" + hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:12])
    return one_writer(locks / hashlib.sha1(example_id.encode()).hexdigest()[:16], wait=False)


def append_part(parts: Path, rec: dict) -> None:
    """One line of parts.jsonl, written whole under a lock so that workers sharing the file never interleave."""
    from interp.diskcache import one_writer

    with one_writer(parts), parts.open("a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


def run_kv75(model, n: int, out: Path, *, until: datetime | None = None, seed: int = 0, n_boot: int = 1000,
             log=print):
    """Score the file's first n examples at the paper's positions, resuming from ``out/parts.jsonl`` and skipping
    examples another worker on the same ``out`` is running; write the result of the complete examples into
    ``out``. Returns the RecallResult (None when none is complete)."""
    params = spec_params(n, seed, n_boot)
    out.mkdir(parents=True, exist_ok=True)
    parts = out / "parts.jsonl"
    commit = code_commit()
    for base in base_examples(params):
        if base.example_id in read_parts(parts):
            continue
        if until is not None and datetime.now(UTC) >= until:
            log(f"stopping at {until:%H:%M} UTC with {len(read_parts(parts))} of {n} examples done")
            break
        with claimed(out, base.example_id) as mine:
            if not mine or base.example_id in read_parts(parts):  # another worker has it, or just finished it
                continue
            swept = [base.with_gold_at(p) for p in resolve_positions(params.positions, base.n_items)]
            t0 = time.perf_counter()
            scores = score_examples(model, swept, batch_size=params.batch_size, generate=True,
                                    max_new_tokens=params.max_new_tokens, attention=True, reuse_prefix=True)
            rec = {"example_id": base.example_id, "model": model.cfg.name, "commit": commit,
                   "seconds": time.perf_counter() - t0,
                   "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                   "positions": [e.gold_position for e in swept], "scores": [score_to_json(s) for s in scores]}
            append_part(parts, rec)
        log(f"{len(read_parts(parts))}/{n} {base.example_id}: correct {[s.correct for s in scores]} "
            f"({rec['seconds']:.0f} s)")
    return write_result(model.cfg.name, n, out, seed=seed, n_boot=n_boot)


def write_result(model_name: str, n: int, out: Path, *, seed: int = 0, n_boot: int = 1000):
    """Reduce the complete examples of ``out/parts.jsonl`` that are the file's first ones, in order (an example
    done past a gap, by another worker, waits for the gap) and write the result."""
    from interp.analysis.recall.run import reduce_scores

    done = read_parts(out / "parts.jsonl")
    bases = []
    for b in base_examples(spec_params(n, seed, n_boot)):  # the complete examples up to the first gap
        if b.example_id not in done:
            break
        bases.append(b)
    if not bases:
        return None
    params = spec_params(len(bases), seed, n_boot)
    pairs, scores = [], []
    for b in bases:
        rec = done[b.example_id]
        for pos, s in zip(rec["positions"], rec["scores"]):
            pairs.append(("baseline", b.with_gold_at(pos)))
            scores.append(score_from_json(s))
    result = reduce_scores(model_name, params, pairs, scores, sum(done[b.example_id]["seconds"] for b in bases))
    shown = out.resolve().relative_to(REPO) if out.resolve().is_relative_to(REPO) else out  # as run from the root
    result.command = f"python -m interp.analysis.recall.kv75 --model {model_name} --n {n} --out {shown}"
    result.write(out)
    paper_rule_table(result.examples).to_csv(out / "paper_rule.csv", index=False)
    position_contrasts(result.examples, n_boot=n_boot, seed=seed).to_csv(out / "contrasts.csv", index=False)
    answer_kinds(result.examples, {b.example_id: b.with_gold_at(0).prompt() for b in bases}).to_csv(
        out / "answer_kinds.csv", index=False)
    commits = sorted({done[b.example_id]["commit"] for b in bases})
    (out / "run.json").write_text(json.dumps({
        "model": model_name, "n_examples": len(bases), "asked": n, "commits": commits,
        "params": dataclasses.asdict(params), "seconds": result.seconds,
        "command": result.command, "equivalent": result.command_for(model_name, params)}, indent=1) + "\n")
    return result


def paper_rule_table(examples):
    """Accuracy by gold position under both scorers, with Wilson 95% intervals: ``correct`` (``is_correct``: a
    SQuAD-normalised answer is a substring of the normalised first line) and ``paper_kv`` (the paper's
    evaluate_kv_responses.py: ``value.lower() in answer.lower()`` over the whole answer; ours stops generating
    at the first newline, so the whole answer is its first line)."""
    import pandas as pd

    from interp.analysis.recall.stats import wilson

    ex = examples.assign(paper_kv=[float(str(a).lower() in str(p).lower())
                                   for a, p in zip(examples["answer"], examples["prediction"])])
    rows = []
    for pos, g in ex.groupby("gold_position", sort=True):
        row = {"gold_position": int(pos), "n": len(g)}
        for col in ("correct", "paper_kv"):
            k = float(g[col].sum())
            lo, hi = wilson(k, len(g))
            row |= {col: k / len(g), f"{col}_lo": lo, f"{col}_hi": hi}
        rows.append(row)
    return pd.DataFrame(rows)


CONTRASTS = (("ends - middle", (0, 74), (24, 49)), ("49 - 0", (49,), (0,)), ("49 - 74", (49,), (74,)),
             ("74 - 0", (74,), (0,)))


def position_contrasts(examples, n_boot: int = 1000, seed: int = 0):
    """Paired differences between the key's positions, over the same base examples: for choice accuracy and the
    value's log p, the mean of each CONTRASTS pair (the mean over the first positions minus the mean over the
    second) with a 95% percentile-bootstrap interval resampling examples; and how many examples have their
    highest log p at each position (`best_logprob`)."""
    import pandas as pd

    from interp.analysis.recall.stats import bootstrap_mean

    rows = []
    wide = {m: examples.pivot(index="example_id", columns="gold_position", values=m) for m in ("choice_correct",
                                                                                           "logprob")}
    for metric, w in wide.items():
        for name, first, second in CONTRASTS:
            d = w[list(first)].mean(axis=1) - w[list(second)].mean(axis=1)
            lo, hi = bootstrap_mean(d.to_numpy(), n_boot=n_boot, seed=seed)
            rows.append({"metric": metric, "contrast": name, "n": len(d), "mean": float(d.mean()), "lo": lo,
                         "hi": hi})
    best = wide["logprob"].idxmax(axis=1)
    for pos in sorted(examples["gold_position"].unique()):
        rows.append({"metric": "best_logprob", "contrast": str(pos), "n": len(best),
                     "mean": float((best == pos).sum())})
    return pd.DataFrame(rows)


UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def answer_kinds(examples, prompts: dict[str, str]):
    """What the greedy answers are, by position of the key: empty (the first line is blank or a lone quote), the
    queried value, another UUID of the same prompt (a key or another value), a UUID found nowhere in the prompt,
    or anything else. `prompts`: example_id -> one of its prompts (every position holds the same pairs)."""
    import re

    import pandas as pd

    uuid = re.compile(UUID)
    kinds = ("empty", "the value", "uuid in the prompt", "uuid elsewhere", "other")
    rows = []
    for pos, g in examples.groupby("gold_position", sort=True):
        counts = dict.fromkeys(kinds, 0)
        for ex_id, pred, value in zip(g["example_id"], g["prediction"], g["answer"]):
            line = str(pred).split("\n")[0].strip() if isinstance(pred, str) else ""
            found = uuid.search(line)
            if line in ("", '"'):
                kind = "empty"
            elif found and found.group(0) == str(value):
                kind = "the value"
            elif found:
                kind = "uuid in the prompt" if found.group(0) in prompts[ex_id] else "uuid elsewhere"
            else:
                kind = "other"
            counts[kind] += 1
        rows.append({"gold_position": int(pos), "n": len(g), **counts})
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    from interp.model.load import load_model

    parser = argparse.ArgumentParser(description="The lost-in-the-middle KV figure on the paper's 75-key file.")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n", type=int, default=43, help="base examples: the file's first n (each at 4 positions)")
    parser.add_argument("--until", default=None, help="HH:MM UTC: start no example after this time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.n < 1:
        raise SystemExit("--n must be at least 1.")
    until = None
    if args.until:
        try:
            hh, mm = (int(x) for x in args.until.split(":"))
            now = datetime.now(UTC)
            until = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        except ValueError:
            raise SystemExit(f"--until {args.until!r} must be HH:MM (UTC).") from None
        if until < now:  # a time already past today means tomorrow
            until += timedelta(days=1)
    try:
        result = run_kv75(load_model(args.model), args.n, args.out, until=until, seed=args.seed, n_boot=args.n_boot)
    except InvalidInputError as e:
        raise SystemExit(str(e)) from None
    if result is None:
        print("no example complete yet")
        return
    print(result.curve_table())


if __name__ == "__main__":
    main()
