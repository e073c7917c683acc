"""Parity of every supported family with transformers, on its tiny random twin (tests/model/families_twins.py).

    .venv/bin/python benchmarks/families.py

For each twin: the largest |logit difference| between interp (load_model on the saved folder) and
transformers' eager forward on the same folder, fp32, 2 x 23 tokens; and whether 14 greedy tokens agree.
Writes benchmarks/families.md (the table the README's model section quotes)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interp.model.families import FAMILIES  # noqa: E402
from interp.model.load import load_model  # noqa: E402
from tests.model.families_twins import TWINS, build_twin, prompt  # noqa: E402


def main() -> None:
    rows = []
    for twin in sorted(TWINS):
        with tempfile.TemporaryDirectory() as tmp:
            hf = build_twin(twin, tmp)
            ours = load_model(tmp)
            tokens = prompt()
            with torch.no_grad():
                diff = (ours(tokens) - hf(tokens).logits).abs().max().item()
            start = prompt(seed=3, batch=1, length=12)
            hf.generation_config.eos_token_id = None
            with torch.no_grad():
                theirs = hf.generate(start, max_new_tokens=14, do_sample=False, pad_token_id=0)[:, 12:]
            out = ours.generate(start, max_new_tokens=14, stop_at_eos=False, do_sample=False)  # prompt + new
            same = out[:, 12:].tolist() == theirs.tolist()
            c = ours.cfg
            features = [k for k, v in (("GQA", c.n_kv_heads < c.n_heads), ("window", c.sliding_window),
                                       ("rope " + (c.rope_scaling or {}).get("rope_type", ""), c.rope_scaling),
                                       ("partial rotary", c.rotary_dim), ("parallel", c.parallel_residual),
                                       ("softcap", c.attn_softcap), ("qk-norm", c.qk_norm)) if v]
            rows.append((twin, FAMILIES[hf.config.model_type].name, ", ".join(features), diff, same))
    lines = ["# Family parity (tiny random twins)", "",
             "interp vs transformers (eager), same saved folder, fp32, 2 x 23 tokens; 14 greedy tokens compared. "
             "Reproduce: `.venv/bin/python benchmarks/families.py`.", "",
             "| twin | family | features switched on | max abs logit difference | greedy tokens identical |",
             "|---|---|---|---:|---|"]
    lines += [f"| {t} | {f} | {feat} | {d:.1e} | {'yes' if s else 'NO'} |" for t, f, feat, d, s in rows]
    Path(__file__).with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
