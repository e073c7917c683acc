"""The command line of the averaged known_1000 causal trace (see `interp.analysis.facts.known_trace` for the
method): ``--shard`` and ``--until`` bound a tracing run, ``--report`` only reduces the kept parts, ``--census``
only counts the facts the model knows (census.json); a tracing or ``--report`` run ends by writing the result
(summary.md, figures, run.json). Run it as ``python -m interp.analysis.facts.known_trace``, the command the
result files quote.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from interp.analysis.facts.known_trace import census, run_known_trace, write_result
from interp.errors import InvalidInputError


def parse_until(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        hh, mm = (int(x) for x in text.split(":"))
        now = datetime.now(UTC)
        until = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    except ValueError:
        raise SystemExit(f"--until {text!r} must be HH:MM (UTC).") from None
    return until + timedelta(days=1) if until < now else until


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard {text!r} must be K/N, e.g. 0/2.") from None
    if not 0 <= k < n:
        raise SystemExit(f"--shard {text!r}: K must be at least 0 and below N.")
    return k, n


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    from interp.model.load import load_model

    parser = argparse.ArgumentParser(description="Averaged causal tracing over ROME's known_1000 facts, resumable.")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--known", type=int, default=None, help="stop once this many known facts are traced")
    parser.add_argument("--until", default=None, help="HH:MM UTC: start no fact after this time")
    parser.add_argument("--report", action="store_true", help="only reduce the kept parts and write the result")
    parser.add_argument("--census", action="store_true",
                        help="only count the facts the model knows (one forward each) into OUT/census.json")
    parser.add_argument("--shard", default="0/1", help="K/N: trace every N-th fact of the order from the K-th "
                        "(run N processes, K = 0..N-1, with the same --out)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.known is not None and args.known < 1:
        raise SystemExit("--known must be at least 1.")
    shard = parse_shard(args.shard)
    until = parse_until(args.until)
    command = (f"OMP_NUM_THREADS=1 nice -n 19 python -m interp.analysis.facts.known_trace --model {args.model}"
               + (f" --known {args.known}" if args.known else "") + f" --until HH:MM --out {args.out}"
               + (f" --shard K/{shard[1]} (one process for each K < {shard[1]})" if shard[1] > 1 else ""))
    try:
        model = load_model(args.model)
        if args.census:
            found = census(model)
            found["command"] = (f"OMP_NUM_THREADS=1 nice -n 19 python -m interp.analysis.facts.known_trace "
                                f"--model {args.model} --census --out {args.out}")
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "census.json").write_text(json.dumps(found, indent=1) + "\n")
            print(f"{model.cfg.name} knows {found['n_known']} of the {found['n_set']} facts "
                  f"({found['relations_known']} of {found['relations_in_set']} relations)")
            return
        if not args.report:
            run_known_trace(model, args.out, known=args.known, until=until, shard=shard)
        result = write_result(model.cfg.name, model.cfg.n_layers, args.out, command=command)
    except InvalidInputError as e:
        raise SystemExit(str(e)) from None
    if result is None:
        print("no fact visited yet")
        return
    print(result.comparison().to_string(index=False))
