"""Write docs/results.md from the committed reports (reports/<model>/): every finding of every experiment, as
its report states it, with the figure, the sample sizes and the command that reproduces it.

Nothing is measured or rounded here: each finding's sentence is copied from the experiment's findings.json
and cited, so the page cannot drift from the files (tests/docs/test_results_page.py checks both). The
hand-written part is the short reading of each analysis below, which carries no measured number.

    .venv/bin/python docs/scripts/results_page.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
PAGE = ROOT / "docs" / "results.md"
MODELS = ("smollm2-135m", "gemma3-270m")

# experiment -> (figure shown, how to read it). The readings name papers and models, never a result:
# every measured number on the page comes from a report's findings.json.
READING = {
    "overview": ("logit_lens.png", "What the model predicts after two fact prompts, and the logit lens "
                 "(nostalgebraist, 2020): the residual stream after each layer read through the final norm and "
                 "the unembedding."),
    "induction": ("heatmap.png", "Induction heads (Olsson et al., 2022) on repeated random tokens: a few heads "
                  "in the upper middle of the network attend to the token after the earlier copy; ablated on a "
                  "batch other than the one they were selected on (each head's output replaced by its mean, zero "
                  "ablation beside it), they cost far more loss than random heads drawn many times from the same "
                  "layers, and path patching finds the previous-token head that feeds their keys "
                  "(K-composition)."),
    "attention-viewer": (None, "The attention patterns of the top induction heads, browsable in the report's "
                         "viewer."),
    "lost-in-middle": ("u_curve.png", "Lost in the middle (Liu et al., 2024) on key-value lists of words: with "
                       "longer lists recall falls from the first position on, a primacy curve rather than the "
                       "paper's U, which the paper saw emerge only in larger models (Llama-2-7B was purely "
                       "recency-biased); the retrieval heads' attention to the gold pair tracks recall across "
                       "positions."),
    "lost-in-middle-uuid": (None, "The paper's own UUID task: off by default (hours of CPU time)."),
    "patching-resid": ("activation_resid.png", "Activation patching and attribution patching (Nanda, 2023) of the "
                       "residual stream on the indirect-object pair \"When Mary and John went to the store, "
                       "John / Mary gave a drink to\", and how well the cheap estimate ranks the cells."),
    "patching-heads": ("activation_heads.png", "The same pair, patched head by head."),
    "trace": ("averaged_effects.png", "Causal tracing (Meng et al., 2022) averaged over facts the model knows: "
              "as ROME found in GPT-2 XL, the MLPs matter at the last subject token in early-middle layers and "
              "attention at the last token in late layers; here the subject peak sits earlier in depth than in "
              "GPT-2 XL, and the last token's MLPs keep a late effect of their own, which ROME does not report. "
              "Editing works best below the trace's MLP peak, as Hase et al. (2023) found in GPT-J."),
    "neurons": ("neuron_controls.png", "Knowledge neurons (Dai et al., 2022) by integrated gradients with the "
                "paper's refinement over a fact's prompts, run as the paper ran them on ROME's known facts: p "
                "tuned per relation on the tuning part, the neurons found on test facts, then suppressed and "
                "amplified on prompts held out of the search, against random units from the same layers and "
                "unrelated facts; the last findings compare with the paper's BERT figures. Where suppressing a "
                "fact's units also lowers unrelated facts, the units look partly generic rather than "
                "fact-specific."),
    "edit-eval": ("edit_eval.png", "ROME edits (Meng et al., 2022) scored as CounterFact scores them, on facts "
                  "drawn at random from the test part of the fact set (never the tuning part the editing defaults "
                  "were chosen on), with the default editor: the original ROME, which tied with ours on held-out "
                  "facts (ours, `--ours`, flips fewer neighbours; the original carries edits to more paraphrases). "
                  "The paper's protocol on held-out facts, against the original ROME and MEMIT, is in the "
                  "evaluation files linked below."),
}
# in-sample: the 50 facts of facts.json the ROME/MEMIT departures were developed on
EVALUATIONS = {"smollm2-135m": "rome-eval-smollm2-135m.md", "gemma3-270m": "rome-eval-gemma3-270m.md"}
# held out: the test part of known_edits (ROME's known_1000), each method at the setting its tune part chose
HELD_OUT = {m: (f"rome-eval-{m}-known_edits-test.md", f"rome-eval-{m}-known_edits-tune.md")
            for m in ("smollm2-135m", "gemma3-270m")}


def _load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def _figure(model: str, name: str, figure: str | None) -> list[str]:
    if figure is None or not (REPORTS / model / name / "figures" / figure).exists():
        return []
    return [f"![{name}, {model}](../reports/{model}/{name}/figures/{figure})", ""]


def _experiment(model: str, entry: dict) -> list[str]:
    name = entry["name"]
    findings = _load(REPORTS / model / name / "findings.json")
    if not findings:
        return []
    source = f"../reports/{model}/{name}/findings.json"
    lines = [f"### {model}", "", f"Reproduce: `{entry['run_command']}`; "
             f"computed {entry.get('computed_at', 'at an unknown time')} ([findings]({source})).", ""]
    lines += _figure(model, name, READING.get(name, (None, ""))[0])
    lines += [f"- {f['text']}" for f in findings]
    return lines + [""]


def section(name: str, entries: dict[str, dict]) -> list[str]:
    """One analysis: its title, the reading, then each model's findings."""
    title = next(iter(entries.values()))["title"]
    body = [line for model, entry in entries.items() for line in _experiment(model, entry)]
    if not body:
        return []
    return [f"## {title}", "", READING.get(name, (None, ""))[1], "", *body]


def page() -> str:
    manifests = {m: _load(REPORTS / m / "manifest.json") for m in MODELS}
    manifests = {m: man for m, man in manifests.items() if man}
    order: dict[str, dict[str, dict]] = {}
    for model, man in manifests.items():
        for entry in man["experiments"]:
            order.setdefault(entry["name"], {})[model] = entry
    lines = ["# Results", "",
             "<!-- written by docs/scripts/results_page.py from reports/*/: rerun it after a report changes -->", "",
             "What the committed reports found, finding by finding. Each sentence is the report's own "
             "(`findings.json` of the experiment, linked), with the command that reproduces it; the full reports "
             "with every table are "
             + ", ".join(f"[`reports/{m}/`](../reports/{m}/index.html)" for m in manifests) + ". The models are "
             "4-bit GGUF checkpoints dequantised to fp32; SmolLM2-135M is the Instruct variant.", "",
             "ROME and MEMIT on the paper's protocol against the original methods, with intervals: on held-out "
             "facts (the test part of `known_edits`, built from ROME's `known_1000.json`; each method at the "
             "setting its tuning part chose) "
             + ", ".join(f"[{m}](../benchmarks/{test}) ([tuning](../benchmarks/{tune}))"
                         for m, (test, tune) in HELD_OUT.items())
             + "; in-sample, on the 50 facts our departures were developed on: "
             + ", ".join(f"[{m}](../benchmarks/{f})" for m, f in EVALUATIONS.items()) + "; the "
             "method, its departures from the paper and their ablations: [ROME](../benchmarks/rome.md).", "",
             "Causal tracing on ROME's own facts (`known_1000.json`, the paper's settings), averaged over the "
             "first 200-odd facts each model knows in a seeded order, beside the paper's GPT-2 XL figures: "
             + ", ".join(f"[{m}](../experiments/results/known-1000-trace/{m}/summary.md)" for m in manifests)
             + ".", ""]
    for name, entries in order.items():
        lines += section(name, entries)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    PAGE.write_text(page())
    print(f"wrote {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
