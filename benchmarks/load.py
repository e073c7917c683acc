"""Peak memory and time of loading a ~1B-parameter Llama-shaped bf16 checkpoint: interp vs transformers.

    .venv/bin/python benchmarks/load.py [--layers 16] [--dtype bfloat16]

Writes a random checkpoint shaped like Llama-3.2-1B (hidden 2048, 16 layers, 32/8 heads, MLP 8192, vocab
128256, tied embeddings: 1.24B parameters, 2.5 GB in bf16) once into a temporary folder, then loads it in a
fresh process per contender and reads that process's peak resident memory (VmHWM) and wall time. The
baseline is the same process after its imports, so "added" is what the load itself cost. Writes
benchmarks/load.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(2)


def kb(field):  # from /proc: ru_maxrss would carry the parent's peak across exec
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])


which, folder, dtype = sys.argv[1], sys.argv[2], getattr(torch, sys.argv[3])
if which == "interp":
    from interp.model.load import load_model
else:
    import transformers
base = kb("VmRSS")
start = time.perf_counter()
if which == "interp":
    model = load_model(folder, dtype=dtype)
else:
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
seconds = time.perf_counter() - start
peak = kb("VmHWM")
size = sum(p.numel() * p.element_size() for p in model.parameters())
with torch.no_grad():  # one token through the model touches every weight (transformers maps the file lazily)
    model(torch.tensor([[1]]))
touched = kb("VmHWM")
print(json.dumps({"seconds": seconds, "base_kb": base, "peak_kb": peak, "after_forward_kb": touched, "bytes": size}))
"""


def write_checkpoint(folder: Path, layers: int) -> int:
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    cfg = LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=layers,
                      num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=True,
                      max_position_embeddings=4096, rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
    cfg.save_pretrained(folder)
    gen = torch.Generator().manual_seed(0)
    shapes = {"model.embed_tokens.weight": (128256, 2048), "model.norm.weight": (2048,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes |= {p + "self_attn.q_proj.weight": (2048, 2048), p + "self_attn.k_proj.weight": (512, 2048),
                   p + "self_attn.v_proj.weight": (512, 2048), p + "self_attn.o_proj.weight": (2048, 2048),
                   p + "mlp.gate_proj.weight": (8192, 2048), p + "mlp.up_proj.weight": (8192, 2048),
                   p + "mlp.down_proj.weight": (2048, 8192), p + "input_layernorm.weight": (2048,),
                   p + "post_attention_layernorm.weight": (2048,)}
    state = {k: (torch.randn(s, generator=gen) * 0.02).to(torch.bfloat16) for k, s in shapes.items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return sum(t.numel() for t in state.values())


def run(which: str, folder: Path, dtype: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(folder), dtype], capture_output=True, text=True,
                         check=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                                          "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".md")))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        n = write_checkpoint(folder, args.layers)
        print(f"wrote {n / 1e9:.2f}B parameters in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        results = {which: run(which, folder, args.dtype) for which in ("transformers", "interp")}
    gb = lambda kb: kb / 1024 / 1024  # noqa: E731
    lines = [
        "# Loading a ~1B-parameter checkpoint",
        "",
        f"Random Llama-3.2-1B-shaped checkpoint ({n / 1e9:.2f}B parameters, bf16 safetensors, one file), loaded "
        f"as {args.dtype} on the CPU, each contender in a fresh process. Reproduce: "
        f"`.venv/bin/python benchmarks/load.py`.",
        "",
        "| contender | seconds | model GB | peak RSS GB | added by the load GB | added / model "
        "| peak after one forward GB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for which, r in results.items():
        added = gb(r["peak_kb"] - r["base_kb"])
        model_gb = r["bytes"] / 1024 ** 3
        lines.append(f"| {which} | {r['seconds']:.1f} | {model_gb:.2f} | {gb(r['peak_kb']):.2f} | {added:.2f} | "
                     f"{added / model_gb:.2f}x | {gb(r['after_forward_kb']):.2f} |")
    lines += ["", "transformers maps the file and reads weights lazily, so its load adds little until a forward "
              "touches them; the last column shows both once every weight has been read.", ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
