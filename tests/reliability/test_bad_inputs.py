"""Every input answered (issue #15, items 7-9): one table of bad inputs, each answered by one sentence on
stderr ("Error: ...") and exit status 1 (2 for a usage error, which says so), never a traceback, never work
on nonsense. Rows that need no model prove it: the model loader fails if called. Rows that need the model
run on SmolLM2 (slow) and must leave its weights unchanged. Memory rows emulate the 24 GB machine of the
issue with INTERP_MEMORY_LIMIT (or a smaller one where the command would fit in 24 GB)."""

from __future__ import annotations

import gzip
import json
import struct
import sys
from pathlib import Path

import pytest

from interp.fingerprint import weights_checksum

from cli.common import run_cli
from cli.main import cli

FACTS = str(Path(__file__).resolve().parents[2] / "experiments" / "data" / "facts.json")
EDIT = ["edit", "--prompt", "The {} is in", "--subject", "Eiffel Tower", "--target", "Rome"]


def _safetensors(path: Path) -> None:
    header = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad-inputs")
    (d / "empty.txt").write_text("  \n")
    (d / "emptycorpus").mkdir()
    (d / "corrupt.json.gz").write_bytes(gzip.compress(b'[{"a": 1}]')[:12] + b"garbage")
    (d / "corrupt.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00garbage-not-gzip")
    (d / "nested.json").write_text("[" * 100_000 + "]" * 100_000)
    (d / "bad.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 2)
    for name, config in (("hf-bad-config", '{"model_type": "llama", "hidden_size": "big"}'),
                         ("hf-not-json", "{not json"),
                         ("hf-bad-tokenizer", json.dumps({"model_type": "llama", "hidden_size": 8,
                                                          "intermediate_size": 16, "num_attention_heads": 2,
                                                          "num_key_value_heads": 2, "num_hidden_layers": 1,
                                                          "vocab_size": 10, "max_position_embeddings": 32}))):
        (d / name).mkdir()
        (d / name / "config.json").write_text(config)
        _safetensors(d / name / "model.safetensors")
    (d / "hf-bad-tokenizer" / "tokenizer.json").write_text("{garbage")
    (d / "specs").mkdir()
    (d / "specs" / "bad.toml").write_bytes(b'name = "bad"\ntitle = "\xff\xfe"\n'
                                           b'analysis = "interp.analysis.overview:run_overview"\n')
    return d


SLOW = pytest.mark.slow
GEMMA = [pytest.mark.slow, pytest.mark.gemma]
# (id, arguments ({d}: the inputs folder), exit status, fragment of the one error line, memory limit, marks)
TABLE = [
    ("inspect -k 100000", ["inspect", "hello", "-k", "100000"], 1, "vocabulary of 49152", None, SLOW),
    ("generate -t nan", ["generate", "hello", "-t", "nan"], 1, "--temperature must be a finite number", None, ()),
    ("generate -t inf", ["generate", "hello", "-t", "inf"], 1, "--temperature must be a finite number", None, ()),
    ("generate --top-p nan", ["generate", "hello", "--top-p", "nan"], 1, "--top-p must be a finite number", None, ()),
    ("generate -n 0", ["generate", "hello", "-n", "0"], 1, "at least 1", None, ()),
    ("trace --noise nan", ["trace", "--noise", "nan"], 1, "--noise must be a finite number", None, ()),
    ("trace --noise 0", ["trace", "--noise", "0"], 1, "--noise must be above 0", None, ()),
    ("trace --samples 0", ["trace", "--samples", "0"], 1, "--samples must be at least 1", None, ()),
    ("neurons --steps 0", ["neurons", "--steps", "0"], 1, "--steps must be at least 1", None, ()),
    ("neurons --threshold nan", ["neurons", "--threshold", "nan"], 1, "--threshold must be a finite number", None, ()),
    ("edit --stats-tokens -5", [*EDIT, "--stats-tokens", "-5"], 1, "--stats-tokens must be at least 1", None, ()),
    ("edit --stats-tokens 0", [*EDIT, "--stats-tokens", "0"], 1, "--stats-tokens must be at least 1", None, ()),
    ("edit empty --corpus file", [*EDIT, "--corpus", "{d}/empty.txt"], 1, "holds no text", None, ()),
    ("edit empty --corpus folder", [*EDIT, "--corpus", "{d}/emptycorpus"], 1, "holds no text", None, ()),
    ("edit --gen-tokens 0", [*EDIT, "--gen-tokens", "0"], 1, "--gen-tokens must be at least 1", None, ()),
    ("edit --layer 99", [*EDIT, "--layer", "99"], 1, "99", None, SLOW),
    ("edit-eval memit --layers 3,99", ["edit-eval", "--facts", FACTS, "--method", "memit", "--layers", "3,99"], 1,
     "names layer 99", None, SLOW),
    ("edit-eval --layers 3,3", ["edit-eval", "--facts", FACTS, "--method", "memit", "--layers", "3,3"], 1,
     "twice", None, ()),
    ("edit-eval --limit 0", ["edit-eval", "--facts", FACTS, "--limit", "0"], 1, "--limit must be at least 1", None, ()),
    ("edit-eval --limit -1", ["edit-eval", "--facts", FACTS, "--limit", "-1"], 1,
     "--limit must be at least 1", None, ()),
    ("trace --limit 0", ["trace", "--facts", FACTS, "--limit", "0"], 1, "--limit must be at least 1", None, ()),
    ("trace --sample 0", ["trace", "--facts", FACTS, "--sample", "0"], 1, "--sample must be at least 1", None, ()),
    ("neurons --limit -1", ["neurons", "--facts", FACTS, "--limit", "-1"], 1, "--limit must be at least 1", None, ()),
    ("corrupt .json.gz facts", ["trace", "--facts", "{d}/corrupt.json.gz"], 1, "gzip", None, ()),
    ("corrupt .jsonl.gz recall file", ["lost-in-middle", "--file", "{d}/corrupt.jsonl.gz"], 1, "gzip", None, ()),
    ("deeply nested JSON", ["trace", "--facts", "{d}/nested.json"], 1, "nested too deeply", None, ()),
    ("HF config.json with bad values", ["inspect", "hi", "--model", "{d}/hf-bad-config"], 1, "config", None, ()),
    ("HF config.json not JSON", ["inspect", "hi", "--model", "{d}/hf-not-json"], 1, "config.json", None, ()),
    ("HF folder with a bad tokenizer", ["inspect", "hi", "--model", "{d}/hf-bad-tokenizer"], 1, "tokenizer", None, ()),
    ("--model missing.gguf", ["inspect", "hi", "--model", "{d}/missing.gguf"], 1, "does not exist", None, ()),
    ("unreadable GGUF", ["inspect", "hi", "--model", "{d}/bad.gguf"], 1, "not a readable GGUF", None, ()),
    ("unknown model name", ["inspect", "hi", "--model", "nosuchmodel"], 1, "Unknown model", None, ()),
    ("non-UTF-8 spec", ["run", "bad", "--experiments", "{d}/specs"], 1, "not UTF-8", None, ()),
    ("usage: bad integer", ["inspect", "hi", "-k", "x"], 2, "usage error", None, ()),
    ("usage: unknown option", ["inspect", "hi", "--bogus"], 2, "usage error", None, ()),
    ("induction --seq-len 4000 (24 GB)", ["induction", "--seq-len", "4000", "--no-peer", "--no-text"], 1,
     "lower --seq-len", "24G", SLOW),
    ("30,000-word prompt (SmolLM2)", ["inspect", " ".join(["word"] * 30_000)], 1, "8192", "24G", SLOW),
    ("30,000-word prompt on Gemma (24 GB)", ["inspect", " ".join(["word"] * 30_000), "--model", "gemma3-270m"], 1,
     "shorten the prompt", "24G", GEMMA),
    ("trace --samples 2000, multi-token target (512 MB)", ["trace", "--target", "New York", "--samples", "2000"], 1,
     "lower --samples", "512M", SLOW),
    ("neurons --steps 100000, multi-token target (24 GB)", ["neurons", "--target", "New York", "--steps", "100000"],
     1, "lower --steps", "24G", SLOW),
]


@pytest.mark.parametrize("label, args, status, fragment, limit",
                         [pytest.param(*row[:5], marks=row[5], id=row[0]) for row in TABLE])
def test_bad_input_is_one_sentence(label, args, status, fragment, limit, inputs, monkeypatch, capsys, request):
    import interp.model.load as loading

    real = loading.load_model
    uses_model = any(m.name == "slow" for m in request.node.iter_markers())
    models = {}
    if uses_model:  # the session's real model, requested before the command runs
        name = "gemma3-270m" if "gemma3-270m" in args else "smollm2-135m"
        models[name] = request.getfixturevalue("gemma3" if name == "gemma3-270m" else "smollm2")

    def load(name="smollm2-135m", *a, **k):
        if name in models:
            return models[name]
        if name in ("smollm2-135m", "gemma3-270m"):
            raise AssertionError(f"{label}: the model was loaded before the input was checked")
        return real(name, *a, **k)

    monkeypatch.setattr(loading, "load_model", load)
    if limit:
        monkeypatch.setenv("INTERP_MEMORY_LIMIT", limit)
    before = {name: weights_checksum(m) for name, m in models.items()}
    monkeypatch.setattr(sys, "argv", ["interp", *[a.replace("{d}", str(inputs)) for a in args]])
    code = run_cli(cli)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("Loading ", "Note: "))]
    assert code == status, err
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in err, err
    assert fragment in lines[0], lines[0]
    if "New York" in args:
        assert "only its first token ' New' is scored" in err  # said, not silently dropped
    for name, checksum in before.items():
        assert weights_checksum(models[name]) == checksum
