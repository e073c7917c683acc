"""ROME / MEMIT evaluation tables on the same N known facts: the original algorithms beside ours, the
objective ablation, the statistics budget and the layer sweep. Writes benchmarks/rome-eval-<model>.md.

    .venv/bin/python benchmarks/rome_eval.py --model smollm2-135m --facts 50 \\
        --tables main,stats,layers,ablation,memit

Every row is `run_edit_eval` on the facts drawn by `--sample N --seed 0` from those the model knows (its
greedy next token on the rewrite prompt is the true answer's first token), one edit at a time, then undone.
Each finished row is kept in benchmarks/results/rome-eval/<model>/<row>.json with its per-fact CSV, and a
rerun skips the rows already there: a killed run resumes, and `--only-write` rebuilds the tables from them.
Rows of the main table measure fluency as the paper does (100 new tokens, 2 prompts per fact); the other
tables do not (`n_gen_prompts = 0`), because edit scores do not depend on it.

Tuning apart from testing: `--data facts|known_edits` picks the fact file (experiments/data/facts.json, or
known_edits.json built from ROME's known_1000) and `--part tune|test` one part of its committed split
(experiments/data/splits/facts.json / known_1000.json); `--part all` (the default, with `--data facts`) is the
in-sample table above, its rows and file unchanged. A part's rows are kept in
benchmarks/results/rome-eval/<model>/<data>-<part>/ and written to benchmarks/rome-eval-<model>-<data>-<part>.md.

    .venv/bin/python benchmarks/rome_eval.py --model smollm2-135m --data known_edits --part tune --facts 10
    .venv/bin/python benchmarks/rome_eval.py --model smollm2-135m --data known_edits --part test --facts 30

The tune part runs the `tune` table (ROME's layer for ours and for the original, the original's statistics
budget at its best layer, MEMIT's window for ours and the original) and picks each method's setting by S (ties:
the earlier, cheaper row); the test part runs the `test` table, every method at the setting its tune rows chose.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "rome-eval"  # each row kept here, per model (--results)
METRICS = ("efficacy", "paraphrase", "neighborhood")


# The baselines are our re-implementations of the authors' algorithms; ROME's update is checked against the authors'
# formula by tests/analysis/rome/test_original_update.py, MEMIT's against nothing of theirs.
ORIGINAL_ROME = "original ROME (our re-implementation, equal to the authors' update within 1e-5 on 5 facts)"
ORIGINAL_MEMIT = "original MEMIT (our re-implementation of the authors' algorithm)"


def rows_of(table: str, model_name: str, n_layers: int) -> list[tuple[str, str, dict]]:
    """(row id, label, EditEvalParams changes) of one table."""
    from interp.analysis.rome import MEMITParams, ROMEParams
    from interp.analysis.rome.hparams import StatsParams, default_layer

    at = table_layer(model_name, n_layers)

    def ref(**changes):
        return ROMEParams.reference(**{"layer": at, **changes})

    ours = ROMEParams.ours(layer=at)
    window = TABLE_MEMIT_LAYERS.get(model_name)
    quiet = {"n_gen_prompts": 0}
    if table == "main":
        return [("rome-original", ORIGINAL_ROME, {"rome": ref()}),
                ("rome-r-rome", "r-ROME (the paper's equation, `--update r-rome`)",
                 {"rome": ref(update="r-rome")}),
                ("rome-ours", "ROME, ours (`--ours`: our objective and update)", {"rome": ours}),
                ("memit-original", ORIGINAL_MEMIT[:-1] + "; `--method memit --reference`)",
                 {"method": "memit", "memit": MEMITParams.reference(layers=window)}),
                ("memit-ours", "MEMIT, ours (`--method memit`)",
                 {"method": "memit", "memit": MEMITParams(layers=window)})] + (
                # where a norm follows the MLP: ours as it was before it solved for the target through that norm
                [("memit-ours-linear", "MEMIT, ours with the residual added before the post-FFN norm "
                  "(`post_norm='linear'`)",
                  {"method": "memit", "memit": MEMITParams(layers=window, post_norm="linear")})]
                if model_name in POST_NORM_MODELS else [])
    if table == "ablation":
        out = [("abl-reference", "original ROME: update and objective", {"rome": ref(), **quiet})]
        for field, value, what in (("decay", "squared", "decay ‖delta‖² instead of ‖delta‖"),
                                   ("kl_at", "last", "KL at the KL prompt's last token, not the subject's"),
                                   ("kl_direction", "orig", "KL(p_orig ‖ p_delta) instead of KL(p_delta ‖ p_orig)"),
                                   ("early_stop", "nll", "early stop on the NLL, not the total loss")):
            out.append((f"abl-{field}", f"+ {what}", {"rome": ref(**{field: value}), **quiet}))
        out.append(("abl-objective", "+ all four (the original update with our objective)",
                    {"rome": ref(decay="squared", kl_at="last", kl_direction="orig", early_stop="nll"), **quiet}))
        out.append(("abl-update", "our update with the original objective",
                    {"rome": replace(ref(), update="ours"), **quiet}))
        return out
    if table == "stats":
        return [(f"stats-{n // 1000}k-{name}", f"{label}, C from {n:,} tokens",
                 {"rome": replace(params, stats=StatsParams(n_tokens=n)), **quiet})
                for name, label, params in (("ours", "ours", ours), ("original", "original ROME", ref()))
                for n in (4_000, 16_000, 64_000)]
    if table == "layers":
        first, last = LAYER_RANGE.get(model_name, (1, n_layers // 2))
        default = default_layer(model_name, n_layers)
        sweep = [(f"layer-{layer}", f"{layer}{' (default)' if layer == default else ''}"
                  f"{' (the other tables)' if layer == at else ''}",
                  {"rome": ROMEParams.ours(layer=layer), **quiet}) for layer in range(first, last + 1)]
        # the original algorithm at the chosen layer too: does its gap to ours hold where ours is best?
        return sweep + [(f"layer-{default}-original", f"original ROME at layer {default} (the default)",
                         {"rome": ref(layer=default), **quiet})]
    if table == "memit":
        from interp.analysis.rome.hparams import default_memit_layers

        out = []
        for other in (None, *MEMIT_WINDOWS.get(model_name, ())):
            layers = other or window  # None: the window of the other tables (row ids "memit-default-*")
            span = f"layers {layers[0]}-{layers[-1]}" if layers else "the default layers"
            name = "default" if other is None else f"{other[0]}-{other[-1]}"
            where = span + (" (default)" if layers and tuple(layers) == default_memit_layers(model_name, n_layers)
                            else " (the other tables)" if other is None else "")
            out += [(f"memit-{name}-ours", f"{where}, ours",
                     {"method": "memit", "memit": MEMITParams(layers=layers), **quiet}),
                    (f"memit-{name}-original", f"{where}, the original MEMIT",
                     {"method": "memit", "memit": MEMITParams.reference(layers=layers), **quiet})]
        return out
    if table in SPLIT_TABLES:
        raise SystemExit(f"The {table} table is run on a part: pass --part {table}.")
    raise SystemExit(f"unknown table {table!r}")


# --- tuning apart from testing ---------------------------------------------------------------------------------

DATA = {"facts": ("facts.json", "facts.json"), "known_edits": ("known_edits.json", "known_1000.json")}  # file, split
SPLIT_TABLES = ("tune", "test")
STATS_BUDGETS = (4_000, 16_000, 64_000)  # the original ROME's statistics budgets tried on the tune part
# MEMIT windows tried on the tune part: the default and the same width one and two layers lower and higher
TUNE_MEMIT_WINDOWS = {"smollm2-135m": ((1, 2, 3, 4), (3, 4, 5, 6), (5, 6, 7, 8)),
                      "gemma3-270m": ((0, 1, 2), (2, 3, 4), (4, 5, 6))}
BATCHES = (10, 100)  # MEMIT edits at once in the test table (a batch size runs where the part has that many facts)


def part_records(data: str, part: str) -> list:
    """The facts of one part ("all", "tune" or "test") of a fact file, in file order."""
    from interp.analysis.facts.records import load_facts
    from interp.analysis.facts.splits import SPLITS_DIR, load_split, select

    if data not in DATA:
        raise SystemExit(f"Unknown --data {data!r}; choose {' or '.join(DATA)}.")
    if part not in ("all", *SPLIT_TABLES):
        raise SystemExit(f"Unknown --part {part!r}; choose all, tune or test.")
    fact_file, split_file = DATA[data]
    records = load_facts(ROOT / "experiments" / "data" / fact_file)
    return records if part == "all" else select(records, load_split(SPLITS_DIR / split_file), part)


def part_dir(results: Path, model_name: str, data: str, part: str, n_facts: int) -> Path:
    """Where a part's rows are kept: the model's folder itself for the in-sample facts table, else one folder per
    part and fact count (a row drawn from 8 facts is never read as one of 20)."""
    base = results / model_name
    return base if (data, part) == ("facts", "all") else base / f"{data}-{part}-{n_facts}facts"


def part_out(model_name: str, data: str, part: str) -> Path:
    name = f"rome-eval-{model_name}" + ("" if (data, part) == ("facts", "all") else f"-{data}-{part}")
    return Path(__file__).parent / f"{name}.md"


def window_name(window) -> str:
    return f"{window[0]}-{window[-1]}"


def tune_groups(model_name: str, n_layers: int, chosen: dict,
                budgets: tuple[int, ...] | None = None) -> dict[str, list[tuple[str, str, dict]]]:
    """The tune table's rows by the method they choose a setting for, each list in the tie-break order (earlier,
    cheaper first). The original ROME's 16k / 64k rows sit at its best 4k layer, so they appear once that layer
    is chosen (`chosen["rome-original-layer"]`)."""
    from interp.analysis.rome import MEMITParams, ROMEParams
    from interp.analysis.rome.hparams import StatsParams

    quiet = {"n_gen_prompts": 0}
    first, last = LAYER_RANGE.get(model_name, (1, n_layers // 2))
    layers = range(first, last + 1, 2)  # every second layer of the sweep range
    out = {"rome-ours": [(f"rome-ours-L{layer}", f"ROME, ours, layer {layer}",
                          {"rome": ROMEParams.ours(layer=layer), **quiet}) for layer in layers],
           "rome-original": [(f"rome-original-L{layer}-4k", f"original ROME, layer {layer}, C from 4k tokens",
                              {"rome": ROMEParams.reference(layer=layer), **quiet}) for layer in layers]}
    at = chosen.get("rome-original-layer")
    if at is not None:
        out["rome-original"] += [(f"rome-original-L{at}-{n // 1000}k", f"original ROME, layer {at}, C from "
                                  f"{n // 1000}k tokens", {"rome": ROMEParams.reference(
                                      layer=at, stats=StatsParams(n_tokens=n)), **quiet})
                                 for n in (budgets or STATS_BUDGETS)[1:]]
    windows = TUNE_MEMIT_WINDOWS.get(model_name, ())
    out["memit-ours"] = [(f"memit-ours-{window_name(w)}", f"MEMIT, ours, layers {window_name(w)}",
                          {"method": "memit", "memit": MEMITParams(layers=w), **quiet}) for w in windows]
    out["memit-original"] = [(f"memit-original-{window_name(w)}", f"original MEMIT, layers {window_name(w)}",
                              {"method": "memit", "memit": MEMITParams.reference(layers=w), **quiet}) for w in windows]
    return out


def best_row(rows, results: dict) -> tuple[str, str, dict] | None:
    """The row with the highest S among rows all measured (None while one is missing); ties go to the earlier."""
    if not rows or any(row not in results for row, _, _ in rows):
        return None
    best = rows[0]
    for r in rows[1:]:
        if row_score(results, r[0]) > row_score(results, best[0]) + 1e-12:
            best = r
    return best


def choose(model_name: str, n_layers: int, results: dict, budgets: tuple[int, ...] | None = None) -> dict:
    """Each method's chosen tune row (absent while its rows are not all measured), and the original ROME's
    layer (its best row at 4k) once chosen."""
    chosen: dict = {}
    first = best_row(tune_groups(model_name, n_layers, {})["rome-original"], results)
    if first is not None:
        chosen["rome-original-layer"] = first[2]["rome"].layer
    for method, rows in tune_groups(model_name, n_layers, chosen, budgets).items():
        best = best_row(rows, results)
        if best is not None:
            chosen[method] = best
    return chosen


def kept_rows(out_dir: Path) -> dict:
    """The rows kept in a part's folder (its part.json, the known facts, is not a row)."""
    rows = {p.stem: json.loads(p.read_text()) for p in sorted(out_dir.glob("*.json")) if p.stem != "part"}
    return {k: v for k, v in rows.items() if "summary" in v}


def test_rows(model_name: str, n_layers: int, chosen: dict, n_known: int, n_facts: int) -> list[tuple[str, str, dict]]:
    """The test table: every method at the setting the tune part chose (`chosen`), MEMIT also in batches. A method
    whose tune rows are not all measured gets a placeholder row (`<method>-untuned`, changes None: not run)."""
    methods = ("rome-original", "rome-ours", "memit-original", "memit-ours")
    if not any(m in chosen for m in methods):
        raise SystemExit("The tune part has not chosen a setting for any method; run --part tune first.")
    chosen = {**{m: (f"{m}-untuned", f"{m}: not tuned yet", None) for m in methods}, **chosen}
    out = []
    for method, label in (("rome-original", ORIGINAL_ROME),
                          ("rome-ours", "ROME, ours (`--ours`: our objective and update)"),
                          ("memit-original", ORIGINAL_MEMIT), ("memit-ours", "MEMIT, ours")):
        row, setting, changes = chosen[method]
        if changes is None:
            out.append((row, f"{label}: not run, its tune rows are incomplete", None))
            continue
        where = "layer" + setting.split(", layer", 1)[-1]  # "layer 10, C from 16k tokens", "layers 5-8"
        out.append((row, f"{label}, {where}", changes))  # no fluency: ~19 s a fact a row, and no score uses it
    for edits in BATCHES:
        if n_known < edits:
            continue
        for method in ("memit-ours", "memit-original"):
            row, setting, changes = chosen[method]
            if changes is None:
                out.append((f"{row}-b{edits}", f"{method}, batches of {edits}: not run, its tune rows are "
                            "incomplete", None))
                continue
            if edits <= n_facts:
                label, more = f"{setting}, in batches of {edits} (the same facts)", {}
            else:  # more facts than the other rows: its own draw (seed 0) of `edits` known facts
                label, more = f"{setting}, one batch of {edits} (its own {edits} facts)", {"sample": edits}
            out.append((f"{row}-b{edits}", label, {**changes, "edits": edits, **more}))
    return out


def default_rows(model_name: str, n_layers: int, chosen: dict) -> list[tuple[str, str, dict]]:
    """The default ROME editor as it ships (the original at the default layer, C from 4k tokens), where the tune
    part chose another setting for the original: a row of its own on the test part."""
    from interp.analysis.rome import ROMEParams
    from interp.analysis.rome.hparams import default_layer

    layer = default_layer(model_name, n_layers)
    row = f"rome-original-L{layer}-4k"
    if row == chosen.get("rome-original", ("",))[0]:
        return []
    return [(row, f"the default ROME editor: the {ORIGINAL_ROME}, layer {layer}, C from 4k tokens",
             {"rome": ROMEParams(layer=layer), "n_gen_prompts": 0})]


LAYER_RANGE = {"smollm2-135m": (2, 12), "gemma3-270m": (1, 9)}  # the sweep ranges
ALL_TABLES = ("main", "ablation", "stats", "layers", "memit")
# MEMIT windows tried beside the default: Gemma-3's around ROME's best layers (1-2), off layer 3, where a ROME
# edit spreads most
MEMIT_WINDOWS = {"gemma3-270m": ((0, 1, 2),)}
POST_NORM_MODELS = {"gemma3-270m"}  # a norm after the MLP (Gemma's post-FFN norm)
# the ROME layer of the main, ablation and statistics tables, as measured (the default before the layer sweep
# moved it), and MEMIT's layers there (SmolLM2's default before the tune part of known_edits moved it to 1-4)
TABLE_LAYER = {"smollm2-135m": 6, "gemma3-270m": 4}
TABLE_MEMIT_LAYERS = {"smollm2-135m": (3, 4, 5, 6), "gemma3-270m": (2, 3, 4)}


def table_layer(model_name: str, n_layers: int) -> int:
    from interp.analysis.rome.hparams import default_layer

    return TABLE_LAYER.get(model_name, default_layer(model_name, n_layers))


def row_params(changes: dict, n_facts: int):
    from interp.analysis.rome import EditEvalParams

    return replace(EditEvalParams(sample=n_facts, seed=0, gen_tokens=100, n_gen_prompts=2), **changes)


def score_key(changes: dict, n_facts: int, model_name: str, n_layers: int) -> str:
    """What a row's edit scores depend on: its params without the fluency generations (seeded apart from the
    edits, so they change no score), the default layer resolved and the other method's params dropped. Two
    rows with one key have the same ES / PS / NS, fact by fact."""
    from interp.analysis.rome import MEMITParams, ROMEParams
    from interp.analysis.rome.hparams import default_layer

    p = replace(row_params(changes, n_facts), n_gen_prompts=0, gen_tokens=0)
    if p.method == "rome":
        layer = p.rome.layer if p.rome.layer is not None else default_layer(model_name, n_layers)
        p = replace(p, rome=replace(p.rome, layer=layer), memit=MEMITParams())
    else:
        p = replace(p, rome=ROMEParams())
    return repr(p)


def reuse_row(out_dir: Path, row: str, same_as: str) -> dict:
    """A row whose scores another kept row already measured: its record, fluency dropped, marked as a copy."""
    data = json.loads((out_dir / f"{same_as}.json").read_text())
    data["row"], data["same_as"] = row, same_as
    data["summary"]["fluency"] = data["summary"]["before"]["fluency"] = float("nan")
    path = out_dir / f"{row}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
    print(f"{row}: the scores of {same_as}", flush=True)
    return data


def code_version() -> str:
    """The git commit the code ran at ("+dirty" when tracked files differ from it)."""
    def git(*cmd):
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no", "--", "benchmarks",
                                     "interp") else "")


def run_row(model, records, out_dir: Path, row: str, changes: dict, n_facts: int, extra: dict | None = None) -> dict:
    from interp.analysis.rome import run_edit_eval

    path = out_dir / f"{row}.json"
    if path.exists():
        return json.loads(path.read_text())
    params = row_params(changes, n_facts)
    t0 = time.perf_counter()
    result = run_edit_eval(model, params, records=records)
    seconds = time.perf_counter() - t0
    per_fact = result.per_fact.drop(columns=[c for c in result.per_fact if c.startswith("generation")])
    per_fact.to_csv(out_dir / f"{row}.csv", index=False)
    data = {"row": row, "summary": result.to_json(), "wall_seconds": seconds, "threads": torch.get_num_threads(),
            "load_average": os.getloadavg()[0], "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            **(extra or {})}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
    print(f"{row}: {seconds:.0f} s", flush=True)
    return data


def harmonic(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return len(values) / sum(1 / v for v in values) if values and min(values) > 0 else 0.0


def facts_table(out_dir: Path, results: dict, row: str):
    """The per-fact scores of a kept row (a reused row's are its twin's), or None."""
    import pandas as pd

    path = out_dir / f"{results[row].get('same_as', row)}.csv"
    return pd.read_csv(path) if path.exists() else None


_FACTS: dict = {}


def fact_groups(df) -> list[int]:
    """Each row's neighbourhood group among the row's facts (`facts.splits.neighbourhood_groups`: facts sharing
    a prompt, or a relation and true object): the table's "group" column, else computed from facts.json by
    case_id (rows kept before the column existed)."""
    if "group" in df:
        return df["group"].tolist()
    from interp.analysis.facts.records import load_facts
    from interp.analysis.facts.splits import neighbourhood_groups

    if not _FACTS:
        _FACTS.update({r.case_id: r for r in load_facts(ROOT / "experiments" / "data" / "facts.json")})
    return neighbourhood_groups([_FACTS[c] for c in df["case_id"]])


def resample(df, n: int = 1000, seed: int = 0):
    """(n, k) weights: how often each of the k facts is in each of n cluster-bootstrap resamples, whole
    neighbourhood groups drawn with replacement (`rome.evaluate.bootstrap_weights`). The same seed and facts
    give every row the same draws, so two rows' statistics are paired."""
    from interp.analysis.rome.evaluate import bootstrap_weights

    return bootstrap_weights(len(df), n, seed, fact_groups(df))


def weighted_means(values, w):
    """The mean of values (k,) under each resample's weights (n, k): (n,). A NaN value (a fact without
    neighbourhood prompts has no NS) is left out, as the row's own mean leaves it out."""
    import numpy as np

    missing = np.isnan(values)
    if not missing.any():
        return (w @ values) / w.sum(1)
    kept = w @ (~missing).astype(float)
    return np.where(kept > 0, (w @ np.where(missing, 0.0, values)) / np.maximum(kept, 1e-300), np.nan)


def metric_interval(df, metric: str, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% cluster-bootstrap interval of a metric's mean over the facts."""
    import numpy as np

    lo, hi = np.percentile(weighted_means(df[metric].to_numpy(float), resample(df, n, seed)), [2.5, 97.5])
    return float(lo), float(hi)


def score_draws(df, n: int = 1000, seed: int = 0):
    """S (the harmonic mean of the mean ES, PS, NS) on n cluster-bootstrap resamples of the facts: (n,). The
    same seed draws the same groups for every row of one fact set, so two rows' draws are paired."""
    import numpy as np

    w = resample(df, n, seed)
    means = np.stack([weighted_means(df[m].to_numpy(float), w) for m in METRICS])  # (3, n)
    return np.where(means.min(0) > 0, 3 / (1 / np.maximum(means, 1e-12)).sum(0), 0.0)


def score_cell(df, summary: dict) -> str:
    import numpy as np

    s = harmonic([summary[m] for m in METRICS])
    if df is None:
        return f"{s:.2f}"
    lo, hi = np.percentile(score_draws(df), [2.5, 97.5])
    return f"{s:.2f} [{lo:.2f}, {hi:.2f}]"


def paired_difference(results: dict, out_dir: Path, a: str, b: str) -> tuple[float, float, float]:
    """S of row a minus S of row b, and the paired 95% bootstrap interval over their (same) facts."""
    import numpy as np

    fa, fb = facts_table(out_dir, results, a), facts_table(out_dir, results, b)
    if list(fa["case_id"]) != list(fb["case_id"]):
        raise SystemExit(f"rows {a} and {b} hold different facts; rerun one of them")
    lo, hi = np.percentile(score_draws(fa) - score_draws(fb), [2.5, 97.5])
    return row_score(results, a) - row_score(results, b), float(lo), float(hi)


def row_score(results: dict, row: str) -> float:
    return harmonic([results[row]["summary"][m] for m in METRICS])


def measured(results: dict, out_dir: Path, row: str) -> bool:
    return row in results and facts_table(out_dir, results, row) is not None


def tune_part_score(model_name: str, row: str, results: dict | None = None,
                    out_dir: Path | None = None) -> tuple[float, float, float, int, int]:
    """One in-sample row (of the 50 facts) re-scored on the facts that fall in the tune part of facts.json's
    committed split: (S, lo, hi, facts, groups)."""
    import numpy as np

    from interp.analysis.facts.splits import SPLITS_DIR, load_split

    out_dir = out_dir or RESULTS / model_name
    results = results if results is not None else kept_rows(out_dir)
    tune = set(load_split(SPLITS_DIR / DATA["facts"][1])["tune"])
    df = facts_table(out_dir, results, row)
    df = df[df["case_id"].isin(tune)].reset_index(drop=True)
    lo, hi = np.percentile(score_draws(df), [2.5, 97.5])
    return harmonic([df[m].mean() for m in METRICS]), float(lo), float(hi), len(df), len(set(fact_groups(df)))


def tune_part_scores(model_name: str, n_layers: int, results: dict | None = None,
                     out_dir: Path | None = None) -> dict[int, tuple[float, float, float, int, int]]:
    """The in-sample layer sweep (the `layers` table's rows of ours) re-scored on the tune part of facts.json
    (`tune_part_score`): {layer: (S, lo, hi, facts, groups)}. The library's default layer is the one with the
    highest S here (ties: the earlier), so the reports' edit-eval, drawn from the test part, never sees the facts
    that chose it."""
    out_dir = out_dir or RESULTS / model_name
    results = results if results is not None else kept_rows(out_dir)
    return {changes["rome"].layer: tune_part_score(model_name, row, results, out_dir)
            for row, _, changes in rows_of("layers", model_name, n_layers)
            if not row.endswith("-original") and measured(results, out_dir, row)}


def tune_part_lines(model_name: str, n_layers: int, results: dict, out_dir: Path) -> list[str]:
    """The layer sweep on the tune part alone, and whether the default is its choice."""
    from interp.analysis.rome.hparams import default_layer

    scores = tune_part_scores(model_name, n_layers, results, out_dir)
    if not scores:
        return []
    best = max(scores, key=lambda layer: (scores[layer][0], -layer))
    default = default_layer(model_name, n_layers)
    _, _, _, n, groups = scores[best]
    cells = ", ".join(f"{layer}: {s:.2f} [{lo:.2f}, {hi:.2f}]" for layer, (s, lo, hi, _, _) in sorted(scores.items()))
    verdict = ("the library's default" if best == default else
               f"not the library's default (layer {default}): move the default")
    return [f"On the tune part of facts.json alone ({n} of these facts, in {groups} neighbourhood groups; the "
            f"test part, which the reports' edit-eval draws from, left out), S by layer: {cells}. Highest: layer "
            f"{best}, {verdict}.", ""]


def held_out_rome(model_name: str, n_layers: int, n_facts: int, budgets: tuple[int, ...],
                  data: str = "known_edits") -> dict:
    """ROME ours and the original on the test part, each at the setting its tune rows chose (the README quotes
    these): per method its row, layer, S with interval, PS and neighbours flipped; their paired S difference;
    and, once measured, the default editor as it ships ("default", `default_rows`) with its paired difference
    to ours ("default-difference")."""
    import numpy as np

    chosen = choose(model_name, n_layers, kept_rows(part_dir(RESULTS, model_name, data, "tune", n_facts)), budgets)
    out_dir = part_dir(RESULTS, model_name, data, "test", n_facts)
    results = kept_rows(out_dir)
    rows = {method: chosen[method] for method in ("rome-ours", "rome-original")}
    for shipped in default_rows(model_name, n_layers, chosen):
        if measured(results, out_dir, shipped[0]):
            rows["default"] = shipped
    out: dict = {}
    for method, (row, _, changes) in rows.items():
        df = facts_table(out_dir, results, row)
        summary = results[row]["summary"]
        lo, hi = np.percentile(score_draws(df), [2.5, 97.5])
        out[method] = {"row": row, "layer": changes["rome"].layer, "S": row_score(results, row), "lo": lo,
                       "hi": hi, "PS": summary["paraphrase"], "flipped": summary["neighborhood_flipped"],
                       "n": len(df), "groups": len(set(fact_groups(df)))}
    out["difference"] = paired_difference(results, out_dir, out["rome-ours"]["row"], out["rome-original"]["row"])
    if "default" in out:
        out["default-difference"] = paired_difference(results, out_dir, out["default"]["row"],
                                                      out["rome-ours"]["row"])
    return out


def held_out_memit(model_name: str, n_layers: int, n_facts: int, budgets: tuple[int, ...],
                   data: str = "known_edits") -> dict:
    """MEMIT ours and the original on the test part at the window each one's tune rows chose (the README quotes
    these): S of each, and ours minus the original, paired, one at a time ("difference") and in batches of 10 and
    100 ("difference-b10", "difference-b100", with each row's S as "ours-b10", "original-b10"..., where
    measured)."""
    chosen = choose(model_name, n_layers, kept_rows(part_dir(RESULTS, model_name, data, "tune", n_facts)), budgets)
    out_dir = part_dir(RESULTS, model_name, data, "test", n_facts)
    results = kept_rows(out_dir)
    ours, original = chosen["memit-ours"], chosen["memit-original"]
    out = {"window": ours[2]["memit"].layers, "ours": row_score(results, ours[0]),
           "original": row_score(results, original[0]),
           "difference": paired_difference(results, out_dir, ours[0], original[0])}
    for edits in BATCHES:
        a, b = f"{ours[0]}-b{edits}", f"{original[0]}-b{edits}"
        if measured(results, out_dir, a) and measured(results, out_dir, b):
            out[f"difference-b{edits}"] = paired_difference(results, out_dir, a, b)
            out[f"ours-b{edits}"], out[f"original-b{edits}"] = row_score(results, a), row_score(results, b)
    return out


def best_line(rows, results: dict, out_dir: Path, baseline: str, what: str) -> list[str]:
    """Which measured row has the highest S, and the paired bootstrap interval of its S minus the baseline's."""
    kept = [(row, label) for row, label, _ in rows if measured(results, out_dir, row)]
    if len(kept) < 2 or baseline not in results:
        return []
    best, label = max(kept, key=lambda r: row_score(results, r[0]))
    if best == baseline:
        return [f"Highest S: {label} ({row_score(results, best):.2f}), {what} itself.", ""]
    d, lo, hi = paired_difference(results, out_dir, best, baseline)
    return [f"Highest S: {label} ({row_score(results, best):.2f}); S minus {what}'s "
            f"({row_score(results, baseline):.2f}): {d:+.2f}, paired 95% cluster-bootstrap interval over the same "
            f"facts [{lo:+.2f}, {hi:+.2f}].", ""]


MAIN_PAIRS = (("rome-ours", "rome-original", "ROME, ours minus the original"),
              ("rome-ours", "rome-r-rome", "ROME, ours minus r-ROME"),
              ("memit-ours", "memit-original", "MEMIT, ours minus the original"),
              ("memit-ours", "memit-ours-linear", "MEMIT, ours minus ours with the residual added before the norm"))


def ablation_pairs(rows) -> list[tuple[str, str, str]]:
    """Each ablation row against the original ROME (its first row)."""
    (base, _, _), *rest = rows
    return [(row, base, f"{label.removeprefix('+ ')}, minus the original") for row, label, _ in rest]


def pair_lines(results: dict, out_dir: Path, pairs=MAIN_PAIRS) -> list[str]:
    """Differences of S, each with its paired bootstrap interval (rows measured only)."""
    out = []
    for a, b, what in pairs:
        if measured(results, out_dir, a) and measured(results, out_dir, b):
            d, lo, hi = paired_difference(results, out_dir, a, b)
            out.append(f"- {what}: S {d:+.2f}, paired 95% cluster-bootstrap interval over the same facts "
                       f"[{lo:+.2f}, {hi:+.2f}].")
    return out + [""] if out else []


def fluency_change(df) -> str:
    """ " (change [95% bootstrap interval])" of the fluency, after minus before, paired over the facts."""
    import numpy as np

    if df is None or "fluency" not in df or df["fluency"].isna().all():
        return ""
    change = (df["fluency"] - df["fluency_before"]).to_numpy(float)
    lo, hi = np.percentile(weighted_means(change, resample(df)), [2.5, 97.5])
    return f" ({change.mean():+.2f} [{lo:+.2f}, {hi:+.2f}])"


def fmt(summary: dict, metric: str, df=None) -> str:
    """mean [95% interval]: the cluster bootstrap over the row's per-fact table when there is one, else the
    interval the row's result stored."""
    mean, (lo, hi) = summary[metric], summary["ci95"][metric]
    if df is not None:
        lo, hi = metric_interval(df, metric)
    return f"{mean:.2f} [{lo:.2f}, {hi:.2f}]"


def table_lines(table: str, rows, results: dict, with_fluency: bool, out_dir: Path) -> list[str]:
    head = "| | ES | PS | NS | NS before | neighbours flipped | S |"
    rule = "|---|---|---|---|---|---|---|"
    if with_fluency:
        head += " fluency before -> after (bits; the change, paired) |"
        rule += "---|"
    head += " s / edit |"
    rule += "---|"
    lines = [head, rule]
    for row, label, _ in rows:
        if row not in results:
            lines.append(f"| {label} | not run |" + " |" * (head.count("|") - 3))
            continue
        s = results[row]["summary"]
        df = facts_table(out_dir, results, row)
        flipped = s.get("neighborhood_flipped")
        line = (f"| {label} | {fmt(s, 'efficacy', df)} | {fmt(s, 'paraphrase', df)} "
                f"| {fmt(s, 'neighborhood', df)} | {s['before']['neighborhood']:.2f} | {flipped:.2f} "
                f"| {score_cell(df, s)} |")
        if with_fluency:
            change = fluency_change(facts_table(out_dir, results, row))
            line += f" {s['before']['fluency']:.2f} -> {s['fluency']:.2f}{change} |"
        line += f" {s['seconds_per_edit']:.1f} |"
        lines.append(line)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--data", default="facts", help="facts (experiments/data/facts.json) or known_edits "
                    "(experiments/data/known_edits.json)")
    ap.add_argument("--part", default="all", help="all (the in-sample tables), or the tune or test part of the "
                    "data's committed split (runs the tune / test table)")
    ap.add_argument("--facts", type=int, default=50, help="known facts drawn at random (seed 0)")
    ap.add_argument("--tune-facts", type=int, default=None, help="with --part test: the tune run whose choices it "
                    "tests (its --facts; default: the same as --facts)")
    ap.add_argument("--tables", default=None, help="with --part all; default: all (main,ablation,stats,layers,memit)")
    ap.add_argument("--rows", default="", help="only these row ids (comma-separated), e.g. to run rows in "
                    "two one-thread processes side by side")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", type=Path, default=RESULTS,
                    help="where each row is kept (per model)")
    ap.add_argument("--stats-budgets", default="4000,16000,64000", help="the original ROME's statistics budgets "
                    "tried on the tune part (tokens; the test part must be given the same)")
    ap.add_argument("--only-write", action="store_true", help="only rebuild the tables from the kept rows")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/rome-eval-<model>.md")
    args = ap.parse_args()
    global STATS_BUDGETS
    try:
        STATS_BUDGETS = tuple(sorted({int(n) for n in args.stats_budgets.split(",")}))
    except ValueError:
        raise SystemExit(f"--stats-budgets takes token counts joined by commas, not {args.stats_budgets!r}.") from None
    if STATS_BUDGETS[0] != 4_000:
        raise SystemExit("--stats-budgets must include 4000 (the layer sweep's budget).")
    records = part_records(args.data, args.part)
    if args.part != "all" and args.tables not in (None, args.part):
        raise SystemExit(f"--part {args.part} runs the {args.part} table only; leave out --tables.")
    args.out = args.out or part_out(args.model, args.data, args.part)
    torch.set_num_threads(args.threads)

    from interp.model.load import load_model

    args.tune_facts = args.tune_facts or args.facts
    out_dir = part_dir(args.results, args.model, args.data, args.part, args.facts)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = None if args.only_write else load_model(args.model)
    n_layers = model.cfg.n_layers if model is not None else {"smollm2-135m": 30, "gemma3-270m": 18}[args.model]
    if args.part != "all":
        return run_part(args, model, records, out_dir, n_layers)
    tables = [t for t in (args.tables or ",".join(ALL_TABLES)).split(",") if t]
    keys = {row: score_key(changes, args.facts, args.model, n_layers)
            for table in ALL_TABLES for row, _, changes in rows_of(table, args.model, n_layers)}
    results = {}
    for table in tables:
        for row, _, changes in rows_of(table, args.model, n_layers):
            path = out_dir / f"{row}.json"
            twin = next((r for r, k in keys.items() if k == keys[row] and r != row
                         and (out_dir / f"{r}.json").exists()), None)
            if path.exists():
                results[row] = json.loads(path.read_text())
            elif twin is not None and row_params(changes, args.facts).n_gen_prompts == 0:
                results[row] = reuse_row(out_dir, row, twin)
            elif model is not None and (not args.rows or row in args.rows.split(",")):
                results[row] = run_row(model, records, out_dir, row, changes, args.facts)
    write(args, tables, results, n_layers)


def part_facts(args, model, records: list, out_dir: Path) -> tuple[list, dict]:
    """The known facts of the part (the model's greedy answer on the rewrite prompt is the true one), found once
    and noted in <out_dir>/part.json with the part's size; run_edit_eval then draws `--facts` of them (seed 0)
    exactly as it would from the whole part, since it keeps the same known facts."""
    meta_path = out_dir / "part.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if model is None:
        return [], meta
    from interp.analysis.rome.evaluate import known_facts

    known = [r for r, k in zip(records, known_facts(model, records)) if k]
    meta = {"data": args.data, "part": args.part, "n_part": len(records), "n_known": len(known),
            "known_case_ids": [r.case_id for r in known]}
    meta_path.write_text(json.dumps(meta, indent=1))
    return known, meta


def run_part(args, model, records: list, out_dir: Path, n_layers: int) -> None:
    """The tune or test table of one part: run what is not kept yet (resumable), then write the markdown."""
    known, meta = part_facts(args, model, records, out_dir)
    extra = {"data": args.data, "part": args.part, "n_part": meta.get("n_part"), "n_known": meta.get("n_known"),
             "commit": code_version()}
    only = set(args.rows.split(",")) if args.rows else None
    if args.part == "tune":
        while model is not None:  # the original's 16k / 64k rows appear once its layer is chosen
            results = kept_rows(out_dir)
            rows = [r for rows in tune_groups(args.model, n_layers, choose(args.model, n_layers, results)).values()
                    for r in rows]
            todo = [r for r in rows if r[0] not in results and (only is None or r[0] in only)]
            if not todo:
                break
            row, _, changes = todo[0]
            run_row(model, known, out_dir, row, changes, args.facts, extra)
    else:
        tune_dir = part_dir(args.results, args.model, args.data, "tune", args.tune_facts)
        chosen = choose(args.model, n_layers, kept_rows(tune_dir))
        for row, _, changes in (test_rows(args.model, n_layers, chosen, meta.get("n_known", 0), args.facts)
                                + default_rows(args.model, n_layers, chosen)):
            if model is not None and changes is not None and (only is None or row in only):
                run_row(model, known, out_dir, row, changes, args.facts, extra)
    write_part(args, out_dir, n_layers, meta)


def winner_line(results: dict, out_dir: Path, ours: str, original: str, what: str) -> list[str]:
    """Which of ours and the original wins on S: ours only where the paired interval lies above 0."""
    if not (measured(results, out_dir, ours) and measured(results, out_dir, original)):
        return []
    d, lo, hi = paired_difference(results, out_dir, ours, original)
    if lo > 0:
        verdict = "ours wins"
    elif hi < 0:
        verdict = "the original wins"
    else:
        verdict = "they tie (the interval holds 0), so the original"
    return [f"- {what}: {verdict} (S ours minus the original {d:+.2f} [{lo:+.2f}, {hi:+.2f}]).", ""]


def write_part(args, out_dir: Path, n_layers: int, meta: dict) -> None:
    """benchmarks/rome-eval-<model>-<data>-<part>.md from the part's kept rows."""
    from interp.analysis.rome.hparams import default_layer, default_memit_layers

    results = kept_rows(out_dir)
    tune_dir = part_dir(args.results, args.model, args.data, "tune", args.tune_facts)
    chosen = choose(args.model, n_layers, kept_rows(tune_dir))
    fact_file, split_file = DATA[args.data]
    some = next((facts_table(out_dir, results, r) for r in results if measured(results, out_dir, r)), None)
    n = len(some) if some is not None else 0
    n_groups = len(set(fact_groups(some))) if some is not None else 0
    commits = sorted({str(r.get("commit", "?"))[:7] + ("+dirty" if str(r.get("commit", "")).endswith("+dirty")
                                                       else "") for r in results.values()})
    lines = [f"# ROME / MEMIT on {args.model}: the {args.part} part of {fact_file}", "",
             f"`.venv/bin/python benchmarks/rome_eval.py --model {args.model} --data {args.data} --part {args.part} "
             f"--facts {args.facts}"
             + ("" if args.part == "tune" or args.tune_facts == args.facts else f" --tune-facts {args.tune_facts}")
             + " --threads 1"
             + ("" if STATS_BUDGETS == (4_000, 16_000, 64_000) else
                f" --stats-budgets {','.join(str(n) for n in STATS_BUDGETS)}")
             + f"` (OMP_NUM_THREADS=1, at low priority beside other work); torch {torch.__version__}, "
             f"{platform.machine()}, CPU, fp32; code {', '.join(commits) or '?'}. "
             f"The {args.part} part of experiments/data/{fact_file} by the committed split "
             f"experiments/data/splits/{split_file} ({meta.get('n_part', '?')} facts, of which {args.model} knows "
             f"{meta.get('n_known', '?')}); every row draws the same {n} of the known ones at random (seed 0) unless "
             f"it says otherwise, one edit at a time unless batched, each undone before the next. The {n} facts fall "
             f"into {n_groups} neighbourhood groups; 95% cluster-bootstrap intervals (whole groups resampled) in "
             "brackets. ES / PS / NS: the fraction of rewrite / paraphrase / neighbourhood prompts where p(new) > "
             "p(true) (NS: p(true) > p(new)) after the edit; S: their harmonic mean. Seconds per edit: one torch "
             "thread on a shared 2-core machine, a rough guide only.", ""]
    if args.part == "tune":
        groups = tune_groups(args.model, n_layers, chosen)
        defaults = {"rome-ours": f"rome-ours-L{default_layer(args.model, n_layers)}",
                    "memit-ours": f"memit-ours-{window_name(default_memit_layers(args.model, n_layers))}"}
        budgets = " / ".join(f"{n // 1000}k" for n in STATS_BUDGETS)
        titles = {"rome-ours": "ROME, ours: the layer (C from 4k tokens)",
                  "rome-original": "The original ROME: the layer (C from 4k tokens), then the statistics budget "
                                   f"({budgets} tokens) at its best layer",
                  "memit-ours": "MEMIT, ours: the window (C from 4k tokens)",
                  "memit-original": "The original MEMIT: the window (C from 4k tokens)"}
        for method, rows in groups.items():
            lines += [f"## {titles[method]}", ""] + table_lines("tune", rows, results, False, out_dir) + [""]
            best = chosen.get(method)
            if best is None:
                lines += [f"Chosen: not yet (partial: {sum(r[0] in results for r in rows)} of {len(rows)} rows "
                          "measured).", ""]
                continue
            df = facts_table(out_dir, results, best[0])
            lines += [f"Chosen for {method} (the highest S on the tune part; ties: the earlier, cheaper row): "
                      f"{best[1]}, S {score_cell(df, results[best[0]]['summary'])}.", ""]
            base = defaults.get(method)
            if base and base != best[0] and measured(results, out_dir, base):
                d, lo, hi = paired_difference(results, out_dir, best[0], base)
                lines += [f"It minus the library default ({base}): S {d:+.2f}, paired 95% cluster-bootstrap "
                          f"interval [{lo:+.2f}, {hi:+.2f}].", ""]
    else:
        rows = test_rows(args.model, n_layers, chosen, meta.get("n_known", 0), args.facts)
        main_rows, batch_rows = rows[:4], rows[4:]
        shipped = default_rows(args.model, n_layers, chosen)
        rows = rows + shipped
        chosen = {**{m: (f"{m}-untuned", "", None) for m in ("rome-original", "rome-ours", "memit-original",
                                                             "memit-ours")}, **chosen}
        done = sum(measured(results, out_dir, r[0]) for r in rows)
        if done < len(rows):
            lines += [f"**Partial: {done} of {len(rows)} rows measured**; the same command resumes it.", ""]
        lines += [f"Each method at the setting its tune rows on {args.tune_facts} facts chose (benchmarks/rome-eval-"
                  f"{args.model}-{args.data}-tune.md).", "",
                  "## Original algorithms and ours", "",
                  "Fluency is not measured here (the in-sample table has it): it costs about as much as the edit "
                  "and evaluation together, and no edit score depends on it.", ""]
        lines += table_lines("test", main_rows, results, False, out_dir) + [""]
        lines += ["## MEMIT in batches (all edits of a batch made together, then evaluated, then undone)", ""]
        lines += table_lines("test", batch_rows, results, False, out_dir) + [""]
        ids = {m: chosen[m][0] for m in ("rome-original", "rome-ours", "memit-original", "memit-ours")}
        pairs = [(ids["rome-ours"], ids["rome-original"], "ROME, ours minus the original"),
                 (ids["memit-ours"], ids["memit-original"], "MEMIT, ours minus the original"),
                 (ids["rome-ours"], ids["memit-ours"], "ROME ours minus MEMIT ours"),
                 (ids["rome-original"], ids["memit-original"], "the original ROME minus the original MEMIT")]
        pairs += [(f"{ids['memit-ours']}-b10", f"{ids['memit-original']}-b10", "MEMIT in batches of 10, ours minus "
                   "the original"), (f"{ids['memit-ours']}-b10", ids["memit-ours"], "MEMIT ours, batches of 10 "
                   "minus one at a time"), (f"{ids['memit-original']}-b10", ids["memit-original"],
                                             "the original MEMIT, batches of 10 minus one at a time")]
        if any(r[0].endswith("-b100") for r in batch_rows):
            pairs.append((f"{ids['memit-ours']}-b100", f"{ids['memit-original']}-b100",
                          "MEMIT in one batch of 100, ours minus the original"))
        lines += ["Paired differences (the same facts in both rows):", ""] + pair_lines(results, out_dir, pairs)
        if shipped:
            (row, _, _), = shipped
            lines += ["## The default ROME editor as it ships", "",
                      "The original ROME at the library's default layer with C from 4k tokens (the default "
                      "statistics budget, shared with MEMIT): the setting `interp edit` runs without options.", ""]
            lines += table_lines("test", shipped, results, False, out_dir) + [""]
            lines += pair_lines(results, out_dir, [(row, ids["rome-original"], "the default minus the original at "
                                                   "its tuned setting"),
                                                  (row, ids["rome-ours"], "the default minus ROME ours at its tuned "
                                                   "setting")])
        lines += ["Which editor wins on the test part (ours only where the paired interval lies above 0, the "
                  "original where they tie):", ""]
        lines += winner_line(results, out_dir, ids["rome-ours"], ids["rome-original"], "ROME")
        lines += winner_line(results, out_dir, ids["memit-ours"], ids["memit-original"], "MEMIT, one at a time")
        lines += winner_line(results, out_dir, f"{ids['memit-ours']}-b10", f"{ids['memit-original']}-b10",
                             "MEMIT, batches of 10")
        lines += winner_line(results, out_dir, f"{ids['memit-ours']}-b100", f"{ids['memit-original']}-b100",
                             "MEMIT, one batch of 100")
    text = "\n".join(lines)
    args.out.write_text(text)
    print(text)


def write(args, tables, results, n_layers) -> None:
    from interp.analysis.rome.hparams import default_layer

    out_dir = args.results / args.model
    first = next(iter(results.values()), None)
    lines = [f"# ROME / MEMIT evaluation on {args.model}: {args.facts} known facts", ""]
    if first is None:
        return
    n = first["summary"]["n"]
    tables_kept = (facts_table(out_dir, results, r) for r in results)
    some = next((df for df in tables_kept if df is not None), None)
    n_groups = len(set(fact_groups(some))) if some is not None else "?"
    threads = "/".join(sorted({str(r.get("threads", "?")) for r in results.values()}))
    lines += [f"`.venv/bin/python benchmarks/rome_eval.py --model {args.model} --facts {args.facts} --tables "
              f"{','.join(tables)}`; torch {torch.__version__}, {platform.machine()}, CPU, fp32. "
              "The same facts in every row: drawn at random (seed 0) from those the model knows, "
              f"{n} of them, one edit at a time, each undone before the next. 95% cluster-bootstrap intervals in "
              f"brackets: the {n} facts fall into {n_groups} neighbourhood groups (facts sharing a prompt, or a "
              "relation and true object), and each resample draws whole groups. ES / PS / NS: the fraction of "
              "rewrite / paraphrase / neighbourhood prompts where "
              "p(new) > p(true) (NS: p(true) > p(new)), after the edit; NS before: the same on the unedited "
              "model (neighbours are chosen by relation and object only, not by whether the model answers "
              "them); neighbours flipped: right before, wrong after; S: the harmonic mean of ES, PS and NS, "
              "the paper's score, with its 95% cluster-bootstrap interval (a row's groups redrawn, "
              f"its S recomputed). Seconds per edit: the edit alone, statistics cached, {threads} torch thread(s) "
              "per process on a 2-core machine where other work ran too (rows may run in processes side by side): "
              "a rough guide only; `benchmarks/rome.md` has the timing.", "",
              "**In-sample**: our objective's departures and the editing defaults were developed on these facts "
              "(the default layer is re-checked on their tune part alone below). Each method on facts held out of "
              f"every choice: `--data known_edits --part test` (rome-eval-{args.model}-known_edits-test.md, where "
              "it was run).", ""]
    titles = {"main": "Original algorithms and ours (fluency over 100 new tokens, 2 prompts per fact)",
              "ablation": "The v* objective: the original ROME with one of our departures at a time",
              "stats": "The statistics budget: C from 4k / 16k / 64k tokens sampled from the model",
              "layers": "ROME's layer (ours, statistics 4k; the last row: the original ROME at the default layer)",
              "memit": "MEMIT's layers (statistics 4k), ours and the original on each window"}
    at = table_layer(args.model, n_layers)
    window = TABLE_MEMIT_LAYERS.get(args.model)
    memit_at = f"layers {window[0]}-{window[-1]}" if window else "its default layers"
    lines += [f"ROME edits layer {at} in the main, ablation and statistics tables; MEMIT {memit_at}.", ""]
    for table in tables:
        rows = rows_of(table, args.model, n_layers)
        lines += [f"## {titles[table]}", ""] + table_lines(table, rows, results, table == "main", out_dir) + [""]
        if table == "main":
            lines += pair_lines(results, out_dir)
        if table == "ablation":
            lines += pair_lines(results, out_dir, ablation_pairs(rows))
        if table == "layers":
            sweep = [r for r in rows if not r[0].endswith("-original")]
            lines += best_line(sweep, results, out_dir, f"layer-{at}", f"layer {at}")
            lines += tune_part_lines(args.model, n_layers, results, out_dir)
            default = default_layer(args.model, n_layers)
            lines += pair_lines(results, out_dir, ((f"layer-{default}", f"layer-{default}-original",
                                                    f"At layer {default}, ours minus the original ROME"),))
        if table == "memit":
            lines += pair_lines(results, out_dir, [(a, b, f"{la.removesuffix(', ours')}: ours minus the original")
                                                   for (a, la, _), (b, _, _) in zip(rows[::2], rows[1::2])])
            for name in ("ours", "original"):
                lines += best_line([r for r in rows if r[0].endswith(name)], results, out_dir,
                                   f"memit-default-{name}", "the default window")
        if table == "stats":
            lines += pair_lines(results, out_dir, [(f"stats-{k}-ours", f"stats-{k}-original",
                                                    f"C from {k} tokens, ours minus the original ROME")
                                                   for k in ("4k", "16k", "64k")])
            for name in ("ours", "original"):
                lines += best_line([r for r in rows if r[0].endswith(name)], results, out_dir, f"stats-4k-{name}",
                                   "the 4k row")
    text = "\n".join(lines)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
