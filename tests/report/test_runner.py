"""Specs, the cached runner and the report pipeline, on a tiny random model and a fake analysis."""

from __future__ import annotations

import json

import pytest
from conftest import write_spec  # tests/report is on sys.path (see conftest)

from interp.errors import DataFormatError, InterpError, InvalidInputError
from interp.report import runner
from interp.report.pipeline import check_owned, make_report, report_name
from interp.report.specs import build_params, load_specs, parse_spec, select


def test_specs_load_in_order_and_select(spec_dir):
    specs = load_specs(spec_dir)
    assert [s.name for s in specs] == ["alpha", "beta", "gamma"]
    assert not specs[2].enabled and specs[2].disabled_reason == "waiting for its analysis"
    assert [s.name for s in select(specs, ["beta"])] == ["beta"]
    with pytest.raises(InvalidInputError, match="Unknown experiment 'nope'; known: alpha, beta, gamma"):
        select(specs, ["nope"])
    assert specs[0].run_command("m") == "interp run alpha --model m"
    assert specs[0].cli_command("m") == "interp fake --model m"


@pytest.mark.parametrize("text, field", [
    ('title = "t"\nanalysis = "a:b"', "name"),
    ('name = "bad"\ntitle = "t"\nanalysis = "nocolon"', "analysis"),
    ('name = "bad"\ntitle = "t"\nanalysis = "a:b"\nparms = 1', "parms"),
    ('name = "other"\ntitle = "t"\nanalysis = "a:b"', "name"),
])
def test_bad_specs_name_the_field(tmp_path, text, field):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=f"field '{field}'"):
        parse_spec(path)


def test_invalid_toml_is_a_data_format_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("name = ")
    with pytest.raises(DataFormatError, match="not valid TOML"):
        parse_spec(path)


def test_params_overrides_seed_and_unknown_params(tmp_path):
    spec = parse_spec(write_spec(tmp_path, "p", extra="",
                                 params='n_tokens = 8\n[overrides."big-model"]\nn_tokens = 4\n'))
    assert build_params(spec, "small").n_tokens == 8
    assert build_params(spec, "big-model").n_tokens == 4
    assert build_params(spec, "small").seed == 3  # the spec's seed reaches a params class with a seed field
    bad = parse_spec(write_spec(tmp_path, "q", params="nonsense = 1"))
    with pytest.raises(DataFormatError, match="does not fit"):
        build_params(bad, "small")
    missing = parse_spec(write_spec(tmp_path, "r"))
    object.__setattr__(missing, "analysis", "report_fake_analysis:no_such_function")
    with pytest.raises(InvalidInputError, match="has no 'no_such_function'"):
        runner.import_object(missing.analysis, missing)


def test_cache_reuse_force_and_keys(tiny_llama, spec_dir, cache_env, fake_calls):
    alpha, beta = load_specs(spec_dir)[:2]
    first = runner.run_experiment(tiny_llama, "tiny", alpha, progress=False)
    assert first.status == "computed" and fake_calls["n"] == 1
    assert first.folder.is_relative_to(cache_env)
    info = json.loads((first.folder / "run.json").read_text())
    assert info["seed"] == 3 and info["params"]["n_tokens"] == 8 and info["figures"] == ["figures/per_layer.png"]
    again = runner.run_experiment(tiny_llama, "tiny", alpha, progress=False)
    assert again.status == "cached" and again.key == first.key and fake_calls["n"] == 1
    forced = runner.run_experiment(tiny_llama, "tiny", alpha, recompute=True, progress=False)
    assert forced.status == "computed" and fake_calls["n"] == 2
    other = runner.run_experiment(tiny_llama, "tiny", beta, progress=False)  # other parameters, other key
    assert other.key != first.key and fake_calls["n"] == 3
    # same parameters on other weights: another key
    import torch

    with torch.no_grad():
        tiny_llama.blocks[0].mlp.w_in.mul_(1.5)
    changed = runner.run_experiment(tiny_llama, "tiny", alpha, progress=False)
    assert changed.status == "computed" and changed.key != first.key


def test_interrupted_run_leaves_no_entry(tiny_llama, spec_dir, cache_env, fake_calls, monkeypatch):
    alpha = load_specs(spec_dir)[0]

    def crash(result, folder):
        (folder / "summary.md").write_text("half")
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(runner, "materialise", crash)
        with pytest.raises(KeyboardInterrupt):
            runner.run_experiment(tiny_llama, "tiny", alpha, progress=False)
    assert not list(cache_env.rglob("run.json"))  # nothing a later run would trust
    assert not [p for p in cache_env.rglob("*") if p.name.startswith(".")]  # temporary folder removed
    resumed = runner.run_experiment(tiny_llama, "tiny", alpha, progress=False)
    assert resumed.status == "computed" and (resumed.folder / "summary.md").read_text() != "half"


def test_weight_changing_experiment_is_refused(tiny_llama, tmp_path, cache_env):
    spec = parse_spec(write_spec(tmp_path, "mut", params="mutate = true"))
    with pytest.raises(runner.ModelChangedError, match="left the model's weights changed"):
        runner.run_experiment(tiny_llama, "tiny", spec, progress=False)


def test_make_report_resumes_and_records_provenance(tiny_llama, tmp_path, cache_env, fake_calls):
    specs_dir = tmp_path / "experiments"
    write_spec(specs_dir, "alpha", order=10)
    write_spec(specs_dir, "broken", order=20, params="fail = true")
    write_spec(specs_dir, "gamma", order=30, extra='enabled = false\ndisabled_reason = "waiting for its analysis"\n')
    out = tmp_path / "reports" / "tiny"
    lines: list[str] = []
    outcome = make_report(tiny_llama, "tiny", load_specs(specs_dir), out, progress=False, echo=lines.append)
    assert [r.status for r in outcome.runs] == ["computed", "failed", "disabled"]
    assert any("FAILED: RuntimeError: fake analysis failed on purpose" in s for s in lines)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["generator"] == "interp report"
    assert manifest["model"]["hash"] == runner.weights_hash(tiny_llama)
    assert manifest["environment"]["packages"]["torch"] != "not installed"
    alpha = manifest["experiments"][0]
    assert alpha["seed"] == 3 and alpha["seconds"] > 0 and alpha["run_command"] == "interp run alpha --model tiny"
    assert (out / "alpha" / "per_layer.csv").exists() and (out / "alpha" / "figures" / "per_layer.png").exists()
    assert manifest["experiments"][2]["error"] == "waiting for its analysis"
    assert "fake analysis failed on purpose" in (out / "errors.log").read_text()
    # a second run reuses the finished experiment and retries the failed one
    calls = fake_calls["n"]
    again = make_report(tiny_llama, "tiny", load_specs(specs_dir), out, progress=False, echo=lines.append)
    assert [r.status for r in again.runs] == ["cached", "failed", "disabled"]
    assert fake_calls["n"] == calls + 1  # only the broken one ran again


def test_report_folder_ownership(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InterpError, match="not an interp report"):
        check_owned(foreign)
    check_owned(tmp_path / "new")  # absent: fine
    empty = tmp_path / "empty"
    empty.mkdir()
    check_owned(empty)
    assert report_name("smollm2-135m") == "smollm2-135m"
    assert report_name("/data/my model.gguf") == "my_model"


def test_repo_specs_parse():
    """The repository's own experiment specs are valid, and disabled ones say why."""
    specs = load_specs()
    assert specs, "experiments/ holds no specs"
    for spec in specs:
        assert spec.enabled or spec.disabled_reason, f"{spec.name} is disabled without a reason"
        if spec.enabled:
            runner.import_object(spec.analysis, spec)
            build_params(spec, "smollm2-135m")


def test_inputs_from_files_reach_params_and_kwargs_and_the_key(tiny_llama, tmp_path, cache_env, fake_calls):
    (tmp_path / "nums.json").write_text("[1, 2, 3, 4]")
    inputs = ('[inputs.numbers]\nloader = "report_fake_analysis:load_numbers"\npath = "nums.json"\nlimit = 3\n'
              '[inputs.extra]\nloader = "report_fake_analysis:load_numbers"\npath = "nums.json"\nto = "kwarg"\n')
    spec = parse_spec(write_spec(tmp_path, "inp", params="n_tokens = 8\ninner = { scale = 2.5 }", extra=inputs))
    first = runner.run_experiment(tiny_llama, "tiny", spec, progress=False)
    params, extra = fake_calls["last"]
    assert params.numbers == (1, 2, 3) and extra == (1, 2, 3, 4) and params.inner.scale == 2.5
    assert runner.run_experiment(tiny_llama, "tiny", spec, progress=False).status == "cached"
    (tmp_path / "nums.json").write_text("[9, 2, 3, 4]")  # the data changed: recomputed under a new key
    again = runner.run_experiment(tiny_llama, "tiny", spec, progress=False)
    assert again.status == "computed" and again.key != first.key
    missing = parse_spec(write_spec(tmp_path, "gone", extra='[inputs.numbers]\n'
                                                         'loader = "report_fake_analysis:load_numbers"\n'
                                                         'path = "nope.json"\n'))
    with pytest.raises(InvalidInputError, match="nope.json does not exist"):
        runner.run_experiment(tiny_llama, "tiny", missing, progress=False)


def test_optional_input_may_be_missing(tiny_llama, tmp_path, cache_env, fake_calls):
    spec = parse_spec(write_spec(tmp_path, "opt", extra='[inputs.numbers]\n'
                                                      'loader = "report_fake_analysis:load_numbers"\n'
                                                      'path = "absent.json"\noptional = true\n'))
    run = runner.run_experiment(tiny_llama, "tiny", spec, progress=False)
    assert run.status == "computed" and fake_calls["last"][0].numbers == ()
    assert json.loads((run.folder / "run.json").read_text())["inputs"] == {"numbers": {"missing": "absent.json"}}
