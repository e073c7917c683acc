"""The demo profile (smaller samples, said beside every affected finding), the page written while the report
runs, and the progress line's estimate of the time left."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_spec

from interp.errors import DataFormatError
from interp.report.pipeline import make_report
from interp.report.runner import run_experiment
from interp.report.specs import load_specs, parse_spec
from interp.report.status import StatusLine, clock

ROOT = Path(__file__).resolve().parents[2]
DEMO = '''
seconds = 40
[overrides.tiny]
n_tokens = 7
[demo]
seconds = 2
note = "Four tokens, so the mean is noisier."
[demo.params]
n_tokens = 4
'''


@pytest.fixture
def demo_dir(tmp_path) -> Path:
    folder = tmp_path / "experiments"
    write_spec(folder, "alpha", order=10, extra=DEMO)
    write_spec(folder, "beta", order=20, params="n_tokens = 6")  # no [demo]: the same run in both profiles
    write_spec(folder, "gamma", order=30, params="n_tokens = 5", extra="seconds = 300\n[demo]\nseconds = 30\n")
    return folder


def test_the_demo_profile_changes_only_its_params_and_says_how(demo_dir):
    full = {s.name: s for s in load_specs(demo_dir)}
    demo = {s.name: s for s in load_specs(demo_dir, profile="demo")}
    alpha = demo["alpha"]
    assert alpha.params_for("tiny")["n_tokens"] == 4  # the demo's size wins over the model's override
    assert full["alpha"].params_for("tiny")["n_tokens"] == 7 and full["alpha"].params_for("other")["n_tokens"] == 8
    assert alpha.demo_changes("tiny") == {"n_tokens": (4, 7)} and alpha.demo_changes("other") == {"n_tokens": (4, 8)}
    assert alpha.run_command("tiny") == "interp run alpha --model tiny --demo" and alpha.cli_command("tiny") == ""
    assert alpha.seconds == 2 and full["alpha"].seconds == 40
    assert demo["beta"] is not None and demo["beta"].profile == "full" and demo["beta"].demo_changes("tiny") == {}
    assert demo["beta"].run_command("tiny") == full["beta"].run_command("tiny")
    # a [demo] table with seconds only: the same run (and cache entry), the estimate of a demo run
    gamma = demo["gamma"]
    assert gamma.profile == "full" and gamma.demo_changes("tiny") == {} and gamma.params == full["gamma"].params
    assert gamma.seconds == 30 and full["gamma"].seconds == 300
    assert gamma.run_command("tiny") == full["gamma"].run_command("tiny")


def test_a_demo_run_has_its_own_cache_key(tiny_llama, demo_dir, cache_env, fake_calls):
    full = {s.name: s for s in load_specs(demo_dir)}
    demo = {s.name: s for s in load_specs(demo_dir, profile="demo")}
    a, b = (run_experiment(tiny_llama, "tiny", s["alpha"], progress=False) for s in (full, demo))
    assert a.key != b.key and a.params["n_tokens"] == 7 and b.params["n_tokens"] == 4
    c, d = (run_experiment(tiny_llama, "tiny", s["beta"], progress=False) for s in (full, demo))
    assert d.status == "cached" and c.key == d.key and fake_calls["n"] == 3


@pytest.mark.parametrize("extra, field", [
    ("[demo]\nparms = 1\n", "demo"), ("[demo]\nparams = 3\n", "demo.params"), ("[demo]\nnote = 3\n", "demo.note"),
    ("[demo]\nseconds = -1\n", "demo.seconds"), ('seconds = "soon"\n', "seconds")])
def test_bad_demo_tables_name_the_field(tmp_path, extra, field):
    with pytest.raises(DataFormatError, match=field.replace(".", r"\.")):
        parse_spec(write_spec(tmp_path, "alpha", extra=extra))


def test_every_affected_finding_says_demo_size_and_the_full_command(tiny_llama, demo_dir, cache_env, tmp_path):
    out = tmp_path / "reports" / "demo" / "tiny"
    make_report(tiny_llama, "tiny", load_specs(demo_dir, profile="demo"), out, progress=False, echo=lambda s: None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["profile"] == "demo" and manifest["full_command"] == "make report"
    records = {e["name"]: e for e in manifest["experiments"]}
    assert records["alpha"]["demo"] == {"changes": {"n_tokens": [4, 7]}, "note": "Four tokens, so the mean is noisier."}
    assert "demo" not in records["beta"]
    md = (out / "report.md").read_text()
    findings = md.split("## Key findings")[1].split("\n## ")[0]
    alpha_lines = [line for line in findings.splitlines() if "(#alpha)" in line]
    beta_lines = [line for line in findings.splitlines() if "(#beta)" in line]
    assert alpha_lines and beta_lines
    for line in alpha_lines:
        assert "Demo size: n_tokens 4 (full protocol: 7)." in line and "noisier" in line and "`make report`" in line
    assert not any("Demo size" in line for line in beta_lines)
    page = (out / "index.html").read_text()
    assert page.count("Demo size: n_tokens 4 (full protocol: 7).") == 1 + len(alpha_lines)  # section + findings
    assert "Demo profile: alpha ran with smaller samples" in page and "<code>make report</code>" in page
    assert 'http-equiv="refresh"' not in page  # complete: no reloading


def test_the_page_is_written_after_each_experiment(tiny_llama, demo_dir, cache_env, tmp_path):
    out = tmp_path / "report"
    seen: dict[str, tuple[str, str, bool]] = {}

    def run_one(model, model_name, spec, **kwargs):
        seen[spec.name] = ((out / "index.html").read_text(), (out / "report.md").read_text(),
                           (out / "manifest.json").exists())
        return run_experiment(model, model_name, spec, **kwargs)

    make_report(tiny_llama, "tiny", load_specs(demo_dir), out, progress=False, echo=lambda s: None, run_one=run_one)
    page, md, has_manifest = seen["beta"]
    assert not has_manifest  # the manifest marks a complete report: written once, at the end
    alpha, beta, gamma = (page.split(f'<section id="{n}">')[1].split("</section>")[0]
                          for n in ("alpha", "beta", "gamma"))
    assert '<img src="data:image/png;base64,' in alpha and "Running now" in beta and "Queued" in gamma
    assert 'http-equiv="refresh"' in page and "In progress: 1 of 3 experiments done" in page
    assert "Running now" in seen["alpha"][0] and "Queued" in seen["alpha"][0]
    assert "In progress: 1 of 3 experiments done" in md and "**Running now" in md
    final = (out / "index.html").read_text()
    assert "Running now" not in final and "Queued" not in final and "In progress" not in final


def test_the_demo_command_writes_under_reports_demo(monkeypatch, tiny_llama, demo_dir, cache_env, tmp_path):
    import cli.commands.report as cmd
    from cli.main import cli

    monkeypatch.setattr(cmd, "load_model_for_cli", lambda name, *a, **k: tiny_llama)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["report", "--model", "tiny", "--demo", "--experiments", str(demo_dir),
                                      "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "demo" / "tiny" / "index.html").exists()
    assert not (tmp_path / "reports" / "tiny").exists()  # the full report's folder is left alone
    manifest = json.loads((tmp_path / "reports" / "demo" / "tiny" / "manifest.json").read_text())
    assert manifest["command"] == "interp report --model tiny --demo"


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _specs(demo_dir):
    return [s for s in load_specs(demo_dir) if s.name in ("alpha", "beta")]  # estimates: 40 s, and 40 (the mean)


def test_the_estimate_learns_the_machine_speed_and_follows_the_running_loop(demo_dir):
    now, stream = Clock(), io.StringIO()
    line = StatusLine(_specs(demo_dir), stream=stream, live=True, now=now)
    alpha, beta = line.specs
    assert line.left() == 80
    line.begin(alpha)
    now.t = 10
    assert line.left() == 70  # the running one's estimate less its time, and the queued one
    now.t = 20
    line.end(alpha, computed=True)  # twice as fast as estimated
    assert line.speed() == 0.5 and line.left() == 20
    line.begin(beta)
    loop = iter(line.progress(range(4), desc="facts"))
    next(loop), next(loop)  # one item done, the second handed out
    now.t = 30
    assert line.fraction() == 0.25 and line.left() == pytest.approx(30)  # 10 s for a quarter: 30 s for the rest
    assert "[2/2] beta: facts 1/4" in line.text() and "about 0:30 left" in line.text()
    line.echo(stream.write)("a message\n")
    assert stream.getvalue().endswith("a message\n\r" + line.shown + "\x1b[K")  # cleared, printed, redrawn


def test_without_a_terminal_the_estimate_goes_on_each_experiments_line(tiny_llama, demo_dir, cache_env, tmp_path,
                                                                        monkeypatch):
    stream = io.StringIO()
    line = StatusLine(_specs(demo_dir), stream=stream, live=False, now=Clock())
    line.begin(line.specs[0])
    list(line.progress(range(3), desc="x"))
    assert stream.getvalue() == "" and line.eta() == " (about 1:20 left)"  # no redraws in a log
    lines: list[str] = []
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    make_report(tiny_llama, "tiny", load_specs(demo_dir), tmp_path / "r", echo=lines.append)
    assert lines[0] == f"Report: {tmp_path / 'r' / 'index.html'} (rewritten after each experiment; open it now)"
    assert lines[1].startswith("[1/3] alpha: Fake analysis alpha... (about ") and lines[1].endswith(" left)")
    assert lines[2].startswith("[1/3] alpha: done in ") and sys.stderr.getvalue() == ""


def test_clock():
    assert [clock(s) for s in (0, 65, 760, 3723)] == ["0:00", "1:05", "12:40", "1:02:03"]


def test_the_lost_in_middle_demo_note_states_its_interval():
    """The note's 'up to 0.31 from the point' is the Wilson interval's widest side at the demo's n."""
    from interp.analysis.recall.stats import wilson

    spec = next(s for s in load_specs(ROOT / "experiments", profile="demo") if s.name == "lost-in-middle")
    n = spec.params["n_examples"]
    widest = max(max(k / n - lo, hi - k / n) for k in range(n + 1) for lo, hi in [wilson(k, n)])
    assert f"{widest:.2f}" in spec.demo["note"] and f"{n} prompts per point" in spec.demo["note"]


def test_a_nested_demo_parameter_is_named_by_its_path_against_the_class_default(tmp_path):
    extra = "[demo]\n[demo.params]\ninner = { scale = 0.5 }\n"
    spec = parse_spec(write_spec(tmp_path, "alpha", extra=extra)).for_profile("demo")
    assert spec.demo_changes("tiny") == {"inner.scale": (0.5, 1.0)}  # FakeParams.inner's default scale
