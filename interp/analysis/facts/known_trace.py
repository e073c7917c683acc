"""Averaged causal tracing on ROME's own fact set (``known_1000.json``), one fact at a time, resumable.

Meng et al. (2022, Sec. 2 and Fig. 2) average the indirect effects of causal tracing over the 1,209 facts of
``known_1000.json`` that GPT-2 XL knows. This driver does the same for one of our models with the paper's
settings (10 noise samples, noise 3 x sigma with sigma the embedding std over every subject of the file, a
10-layer window for MLP / attention) and the project's rule for "knows" (``TraceParams.known_only``: the
greedy next token is the first token of the true attribute). It visits the facts in a seeded random order
(seed 0; the file is grouped by relation, so any prefix mixes relations), never chosen by outcome, and
appends one line per fact to ``parts.jsonl``: whether the model knows it and, for a known fact, its p_clean,
p_corrupted and the per-layer indirect effect of each kind (resid / mlp / attn) at each token category
(``TraceParams`` categories), with the git commit of the code that computed it. Each fact's numbers are those
``run_trace`` gives for it (``trace_fact`` is the same function). It starts no fact after ``--until`` and, on
a later call with the same command, resumes after the last fact on disk.

``--report`` (and the end of every run) reduces the kept parts: the averaged effects with 95% bootstrap
intervals over facts, the paper's figure (AIE by layer at the last subject token and the last token) and a
table beside the GPT-2 XL values ALGORITHMS.md cites, written in the result protocol.

    OMP_NUM_THREADS=1 nice -n 19 python -m interp.analysis.facts.known_trace --model smollm2-135m \\
        --known 200 --until 04:30 --out experiments/results/known-1000-trace/smollm2-135m
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from interp.analysis.facts.params import CATEGORIES, TraceParams
from interp.analysis.recall.kv75 import code_commit
from interp.analysis.recall.stats import bootstrap_mean
from interp.analysis.result import Finding, ResultBase
from interp.errors import InvalidInputError

CODE = ("interp/analysis/facts", "interp/model", "interp/interventions", "interp/errors.py")
SETTINGS = ("samples", "noise", "window", "seed")  # the TraceParams fields a parts file is bound to
KIND_LABEL = {"resid": "residual stream", "mlp": "MLP output", "attn": "attention output"}
# What /work/shared/ALGORITHMS.md (section 3) cites from the paper for GPT-2 XL over its known facts; nothing
# else of the paper's figure is quoted here (its per-layer values are not in our notes).
PAPER_GPT2_XL = (
    ("p_clean", "27.0 %"),
    ("p_corrupted", "8.47 %"),
    ("strongest single state", "last subject token, layer 15 of 48 (AIE 8.7 %)"),
    ("MLP", "effect peaks in early-middle layers at the last subject token"),
    ("attention", "matters at the last token in late layers"),
)


def trace_order(n: int, seed: int = 0) -> list[int]:
    """The order the facts are visited in: a seeded random permutation of 0..n-1."""
    return [int(i) for i in np.random.default_rng(seed).permutation(n)]


def settings_of(params: TraceParams) -> dict:
    return {k: getattr(params, k) for k in SETTINGS}


def read_parts(path: Path) -> dict:
    """case id -> its line of parts.jsonl (the last one wins)."""
    from interp.jsonio import read_jsonl_by

    return read_jsonl_by(path, "known_id")


def fact_row(model, fact, params: TraceParams, sigma: float, commit: str) -> dict:
    """One fact's line: known or not, and when known its trace reduced to category x layer effects."""
    from interp.analysis.facts.run import trace_fact

    t0, c0 = time.perf_counter(), time.process_time()
    outcome = trace_fact(model, fact, None, params, sigma)
    row = {"known_id": fact.case_id, "relation_id": fact.relation_id, "subject": fact.subject,
           "target": fact.target_true, "known": not isinstance(outcome, str)}
    if row["known"]:
        row |= {"p_clean": outcome.p_clean, "p_corrupted": outcome.p_corrupted,
                "effects": {k: {c: [None if np.isnan(v) else float(v) for v in arr]
                                for c, arr in outcome.category_effects(k).items()} for k in params.kinds}}
    row |= {"model": model.cfg.name, "commit": commit, "settings": settings_of(params), "sigma": sigma,
            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "load1": os.getloadavg()[0]}
    return row


def run_known_trace(model, out: Path, facts: Sequence | None = None, params: TraceParams = TraceParams(), *,
                    known: int | None = None, until: datetime | None = None, shard: tuple[int, int] = (0, 1),
                    log=print) -> dict:
    """Trace the facts (default: the vendored known_1000) in the seeded order of params.seed, appending one
    line per fact to ``out/parts.jsonl``, skipping those already there; stop before a fact past ``until`` or
    once ``known`` known facts are kept. ``shard=(k, n)``: only every n-th fact of the order from the k-th,
    so n processes (one per core) share one parts file; the file is re-read before each fact (the stop
    counts every process's known facts) and each line is appended under a lock. Returns the parts
    (case id -> line)."""
    from interp.analysis.facts.known import load_known
    from interp.analysis.facts.run import trace_sigma
    from interp.diskcache import one_writer

    facts = list(load_known() if facts is None else facts)
    out.mkdir(parents=True, exist_ok=True)
    parts = out / "parts.jsonl"
    done = read_parts(parts)
    for rec in done.values():
        if rec["settings"] != settings_of(params) or rec["model"] != model.cfg.name:
            raise InvalidInputError(f"{parts} holds facts traced with {rec['model']} at {rec['settings']}, not "
                                    f"{model.cfg.name} at {settings_of(params)}; use another --out.")
    sigma = trace_sigma(model, TraceParams(facts=tuple(facts)))  # over every subject of the file, as the reference
    commit = code_commit(CODE)
    k, n = shard
    for i in trace_order(len(facts), params.seed)[k::n]:
        fact = facts[i]
        done = read_parts(parts) if n > 1 else done  # the other shards' lines too
        n_known = sum(r["known"] for r in done.values())
        if fact.case_id in done:
            continue
        if known is not None and n_known >= known:
            break
        if until is not None and datetime.now(UTC) >= until:
            log(f"stopping at {until:%H:%M} UTC: {len(done)} facts visited, {n_known} known")
            break
        row = fact_row(model, fact, params, sigma, commit)
        with one_writer(parts), parts.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        done[fact.case_id] = row
        n_known += row["known"]
        log(f"{len(done)} visited, {n_known} known: #{fact.case_id} {fact.subject!r} -> {fact.target_true!r} "
            f"{'traced' if row['known'] else 'not known'} ({row['seconds']:.1f} s, load {row['load1']:.2f})")
    return done


def census(model, facts: Sequence | None = None) -> dict:
    """Which facts the model knows (the same rule as the trace's, one forward each), without tracing any:
    the count the averaged trace can reach."""
    from collections import Counter

    from interp.analysis.facts.causal_trace import greedy_token, prepare_case
    from interp.analysis.facts.known import load_known

    facts = list(load_known() if facts is None else facts)
    known = []
    for f in facts:
        case = prepare_case(model, f.prompt, f.subject, f.target_true, case_id=f.case_id)
        if greedy_token(model, case) == case.answer_id:
            known.append(f)
    return {"model": model.cfg.name, "n_set": len(facts), "n_known": len(known),
            "known_by_relation": dict(Counter(f.relation_id for f in known).most_common()),
            "relations_known": len({f.relation_id for f in known}),
            "relations_in_set": len({f.relation_id for f in facts}),
            "known_ids": [f.case_id for f in known], "commit": code_commit(CODE)}


def visited_in_order(done: dict, facts: Sequence, seed: int) -> list[dict]:
    """The kept lines in the visiting order (a prefix of it, unless a line was written by another order)."""
    return [done[facts[i].case_id] for i in trace_order(len(facts), seed) if facts[i].case_id in done]


@dataclass(repr=False)
class KnownTraceResult(ResultBase):
    """The averaged trace over the known facts kept in a parts file."""

    model: str
    params: TraceParams
    seconds: float
    rows: list  # the visited facts' lines, in visiting order
    n_set: int
    n_layers: int
    command: str = ""
    n_boot: int = 1000

    @property
    def known(self) -> list[dict]:
        return [r for r in self.rows if r["known"]]

    def per_fact(self, kind: str, category: str) -> np.ndarray:
        """(n_known, n_layers) indirect effects, NaN rows where the fact has no token of the category."""
        return np.array([[np.nan if v is None else v for v in r["effects"][kind][category]] for r in self.known],
                        dtype=float).reshape(len(self.known), self.n_layers)

    def averaged(self) -> pd.DataFrame:
        """Mean indirect effect per (kind, category, layer) over the known facts, with its 95% bootstrap interval
        over facts and the number of facts that have a token of the category."""
        if getattr(self, "_averaged", None) is None:
            self._averaged = self._average()
        return self._averaged

    def _average(self) -> pd.DataFrame:
        rows = []
        for kind in self.params.kinds:
            for cat in CATEGORIES:
                arr = self.per_fact(kind, cat)
                n = int((~np.isnan(arr[:, 0])).sum()) if len(arr) else 0
                for layer in range(self.n_layers):
                    col = arr[:, layer]
                    lo, hi = bootstrap_mean(col, n_boot=self.n_boot, seed=self.params.seed)
                    rows.append({"kind": kind, "category": cat, "layer": layer,
                                 "aie": float(np.nanmean(col)) if n else np.nan, "lo": lo, "hi": hi, "n_facts": n})
        return pd.DataFrame(rows)

    def fact_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"order": i, "known_id": r["known_id"], "relation_id": r["relation_id"],
                              "subject": r["subject"], "target": r["target"], "known": r["known"],
                              "p_clean": r.get("p_clean"), "p_corrupted": r.get("p_corrupted"),
                              "seconds": r["seconds"], "cpu_seconds": r.get("cpu_seconds"), "load1": r["load1"],
                              "commit": r["commit"]}
                             for i, r in enumerate(self.rows)])

    def _mean_ci(self, key: str) -> tuple[float, float, float]:
        x = [r[key] for r in self.known]
        return (float(np.mean(x)) if x else np.nan, *bootstrap_mean(x, n_boot=self.n_boot, seed=self.params.seed))

    def peak(self, kind: str, category: str | None = None) -> dict:
        """The largest AIE of a kind (at one category, or over all), with its interval and n."""
        avg = self.averaged()
        sub = avg[(avg.kind == kind) & avg.aie.notna() & ((avg.category == category) if category else True)]
        top = sub.loc[sub.aie.idxmax()]
        return {"category": top.category, "layer": int(top.layer), "aie": float(top.aie), "lo": float(top.lo),
                "hi": float(top.hi), "n_facts": int(top.n_facts)}

    def comparison(self) -> pd.DataFrame:
        """Our numbers beside what ALGORITHMS.md cites from the paper for GPT-2 XL (48 layers)."""
        cited = dict(PAPER_GPT2_XL)
        n = len(self.known)
        pc, pc_lo, pc_hi = self._mean_ci("p_clean")
        pk, pk_lo, pk_hi = self._mean_ci("p_corrupted")
        res, mlp = self.peak("resid"), self.peak("mlp", "last_subject")
        attn = self.peak("attn", "last")
        mlp_last = self.peak("mlp", "last")
        attn_subj = self.peak("attn", "last_subject")
        L = self.n_layers

        res_subject = self.peak("resid", "last_subject")

        def pct(x, lo, hi):
            return f"{100 * x:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}]"

        def at(pk):
            return (f"{pk['category'].replace('_', ' ')} token, layer {pk['layer']} of {L} (depth "
                    f"{pk['layer'] / L:.2f}), AIE {pct(pk['aie'], pk['lo'], pk['hi'])}")

        rows = [
            ("p_clean (mean over known facts)", pct(pc, pc_lo, pc_hi), cited["p_clean"]),
            ("p_corrupted (mean)", pct(pk, pk_lo, pk_hi), cited["p_corrupted"]),
            ("residual at the last subject token: peak", at(res_subject),
             cited["strongest single state"] + f" (depth {15 / 48:.2f})"),
            ("residual, any token: peak", at(res), "(not cited)"),
            ("MLP at the last subject token: peak", at(mlp), cited["MLP"]),
            ("MLP at the last token: peak", at(mlp_last), "(not cited)"),
            ("attention at the last token: peak", at(attn), cited["attention"]),
            ("attention at the last subject token: peak", at(attn_subj), "(not cited)"),
        ]
        return pd.DataFrame([{"quantity": q, f"{self.model} (n={n})": ours, "GPT-2 XL (paper, as cited)": p}
                             for q, ours, p in rows])

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"averaged_effects": self.averaged(), "facts": self.fact_table(), "comparison": self.comparison()}

    def figures(self) -> dict:
        return {"aie_by_layer": self._line_figure()}

    def _line_figure(self):
        from interp.figures import new_figure

        avg = self.averaged()
        fig, axes = new_figure((13, 3.4), dpi=120, ncols=3)
        colors = {"last_subject": "tab:green", "last": "tab:red"}
        for ax, kind in zip(axes, ("resid", "mlp", "attn")):
            for cat in ("last_subject", "last"):
                g = avg[(avg.kind == kind) & (avg.category == cat)]
                ax.plot(g.layer, g.aie, color=colors[cat], label=f"{cat.replace('_', ' ')} token")
                ax.fill_between(g.layer, g.lo, g.hi, color=colors[cat], alpha=0.2)
            ax.axvline(15 / 48 * self.n_layers, color="grey", ls=":", lw=1)
            ax.axhline(0, color="black", lw=0.5)
            ax.set_xlabel("layer" + ("" if kind == "resid" else " (centre of a 10-layer window)"))
            ax.set_title(f"{KIND_LABEL[kind]}: AIE on p(answer)", fontsize=9)
            ax.legend(fontsize=7, loc="upper left")
        axes[0].set_ylabel(f"AIE, {len(self.known)} known facts (95% bootstrap)")
        fig.suptitle(f"{self.model}, known_1000 (partial: {len(self.known)} known of {len(self.rows)} visited). "
                     "Dotted: GPT-2 XL's strongest state, layer 15 of 48, at the same depth.", fontsize=9)
        fig.tight_layout()
        return fig

    def to_json(self) -> dict:
        return {"model": self.model, "n_set": self.n_set, "n_visited": len(self.rows), "n_known": len(self.known),
                "settings": settings_of(self.params), "seconds": self.seconds,
                "seconds_per_known_fact": self.seconds_per_known(),
                "cpu_seconds_per_known_fact": self.seconds_per_known("cpu_seconds"),
                "load1_mean": float(np.mean([r["load1"] for r in self.rows])),
                "commits": sorted({r["commit"] for r in self.rows}), "command": self.command,
                "peaks": {"resid": self.peak("resid"), "mlp_last_subject": self.peak("mlp", "last_subject"),
                          "attn_last": self.peak("attn", "last")} if self.known else {},
                "paper_gpt2_xl_as_cited": dict(PAPER_GPT2_XL)}

    def seconds_per_known(self, key: str = "seconds") -> float:
        """Mean wall-clock (or, key="cpu_seconds", CPU) seconds per known fact, over the facts that record it."""
        x = [r[key] for r in self.known if r.get(key) is not None]
        return float(np.mean(x)) if x else np.nan

    def _cpu_text(self) -> str:
        n = sum(r.get("cpu_seconds") is not None for r in self.known)
        if not n:
            return "CPU time not recorded by the commits that made these rows"
        return f"CPU {self.seconds_per_known('cpu_seconds'):.1f} s over the {n} facts that record it"

    def findings(self) -> list[Finding]:
        if not self.known:
            return []
        n = len(self.known)
        out = []
        for key, pk in (("mlp", self.peak("mlp", "last_subject")), ("attn", self.peak("attn", "last"))):
            out.append(self.finding(
                f"known1000_peak_{key}", f"Over {n} known facts of known_1000, the {KIND_LABEL[key]} at the "
                f"{pk['category'].replace('_', ' ')} token matters most at layer {pk['layer']} of {self.n_layers} "
                f"(AIE {pk['aie']:.4f}, 95% CI [{pk['lo']:.4f}, {pk['hi']:.4f}]).", pk["layer"], "layer"))
        return out

    def summary_markdown(self) -> str:
        n, v = len(self.known), len(self.rows)
        lines = [f"# Averaged causal tracing on known_1000: {self.model}", "",
                 f"**{'Partial' if v < self.n_set else 'Complete'}:** {v} of the file's {self.n_set} facts visited "
                 f"in a seeded random order (seed {self.params.seed}); the model knows {n} of them (its greedy next "
                 "token is the true attribute's first token), and only those are traced and averaged. Settings: "
                 f"{self.params.samples} noise samples, noise {self.params.noise} x sigma (sigma over every subject "
                 f"of the file), window {self.params.window}. Intervals: 95% bootstrap over facts ({self.n_boot} "
                 "resamples).", "",
                 f"Command: `{self.command}`", "",
                 f"Compute: {self.seconds:.0f} s wall-clock in all; {self.seconds_per_known():.1f} s per known fact "
                 f"(mean; {self._cpu_text()}), on one "
                 f"thread at nice 19, 1-minute load average {np.mean([r['load1'] for r in self.rows]):.2f} (mean "
                 f"over facts; 2 cores).", ""]
        if n:
            t = self.comparison()
            cols = list(t.columns)
            lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in t.itertuples(index=False)]
            lines += ["", "The GPT-2 XL column is what /work/shared/ALGORITHMS.md (section 3) cites from the paper "
                      "(Meng et al. 2022, over its known facts); the paper's per-layer curves are not quoted. "
                      "Depth = layer / number of layers. Ours in percent of p(answer), as the paper's. Restoring the "
                      "residual at the last token in the top layers restores the prediction itself, so that row is "
                      "large by construction.", "", "![AIE by layer](figures/aie_by_layer.png)"]
        return "\n".join(lines)


def build_result(model_name: str, n_layers: int, out: Path, facts: Sequence | None = None,
                 params: TraceParams = TraceParams(), command: str = "") -> KnownTraceResult | None:
    from interp.analysis.facts.known import load_known

    facts = list(load_known() if facts is None else facts)
    rows = visited_in_order(read_parts(out / "parts.jsonl"), facts, params.seed)
    if not rows:
        return None
    return KnownTraceResult(model_name, params, sum(r["seconds"] for r in rows), rows, len(facts), n_layers,
                            command)


def write_result(model_name: str, n_layers: int, out: Path, facts: Sequence | None = None,
                 params: TraceParams = TraceParams(), command: str = "") -> KnownTraceResult | None:
    """Reduce ``out/parts.jsonl`` and write the result protocol's files into ``out`` (None when empty)."""
    result = build_result(model_name, n_layers, out, facts, params, command)
    if result is None:
        return None
    result.write(out)
    (out / "run.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return result


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


if __name__ == "__main__":
    main()
