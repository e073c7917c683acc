"""Issue 33, rows 5 and 6: --out is never followed out of the folder the user named, and no user file is
replaced. Every refusal is one sentence and exit status 1, before any model loads (the loader fails if called)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from reliability_helpers import write_spec

from cli.common import run_cli
from cli.main import cli


@pytest.fixture
def no_model(monkeypatch):
    import interp.model.load as loading

    def load(*a, **k):
        raise AssertionError("a model was loaded before --out was checked")

    monkeypatch.setattr(loading, "load_model", load)


def interp(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["interp", *args])
    code = run_cli(cli)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Loading ")]
    assert "Traceback" not in err, err
    return code, lines[-1] if lines else ""


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A folder outside the one the user names, with a file of theirs in it."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "keep.txt").write_text("the user's own file\n")
    return folder


@pytest.mark.parametrize("command", [["models"], ["report", "--model", "no-such-model"],
                                     ["report", "--model", "no-such-a,no-such-b"]])
def test_row5_out_as_a_symbolic_link_is_refused(tmp_path, elsewhere, monkeypatch, capsys, no_model, command):
    link = tmp_path / "link"
    link.symlink_to(elsewhere, target_is_directory=True)
    before = tree(elsewhere)
    code, line = interp(monkeypatch, capsys, *command, "--out", str(link))
    assert code == 1 and line.startswith("Error: ") and "symbolic link" in line, line
    assert tree(elsewhere) == before and sorted(os.listdir(elsewhere)) == ["keep.txt"]
    code, line = interp(monkeypatch, capsys, *command, "--out", str(link), "--force")
    assert code == 1 and "symbolic link" in line, line  # --force allows a non-empty folder, never a link
    assert tree(elsewhere) == before


def test_row5_force_never_writes_through_a_link_inside_out(tmp_path, elsewhere, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "models.json").symlink_to(elsewhere / "keep.txt")
    before = tree(elsewhere)
    code, line = interp(monkeypatch, capsys, "models", "--out", str(out), "--force")
    assert code == 1 and "symbolic link (models.json)" in line, line
    assert tree(elsewhere) == before and (out / "models.json").is_symlink()
    (out / "models.json").unlink()
    (out / "old.txt").write_text("x")
    code, _ = interp(monkeypatch, capsys, "models", "--out", str(out), "--force")
    assert code == 0 and (out / "models.json").is_file()


@pytest.mark.parametrize("name", ["comparison.html", "comparison.md"])
def test_row6_the_users_comparison_file_or_link_is_never_replaced(tmp_path, elsewhere, monkeypatch, capsys, no_model,
                                                                  name):
    out = tmp_path / "reports"
    out.mkdir()
    (out / name).write_text("my own notes\n")
    code, line = interp(monkeypatch, capsys, "report", "--model", "no-such-a,no-such-b", "--out", str(out))
    assert code == 1 and f"{name} is not a comparison interp wrote" in line, line
    assert (out / name).read_text() == "my own notes\n"
    (out / name).unlink()
    (out / name).symlink_to(elsewhere / "keep.txt")
    before = tree(elsewhere)
    for force in ([], ["--force"]):
        code, line = interp(monkeypatch, capsys, "report", "--model", "no-such-a,no-such-b", "--out", str(out), *force)
        assert code == 1 and f"{name} is a symbolic link" in line, line
    assert tree(elsewhere) == before and (out / name).is_symlink()


def test_row6_write_comparison_replaces_only_its_own_files(tmp_path, tiny, cache_env, elsewhere):
    from interp.errors import InterpError
    from interp.report.compare import write_comparison
    from interp.report.pipeline import make_report
    from interp.report.specs import load_specs

    specs = tmp_path / "specs"
    write_spec(specs, "first", 10, params='text = "hello"')
    root = tmp_path / "reports"
    folders = [make_report(tiny, name, load_specs(specs), root / name, progress=False, echo=lambda s: None).folder
               for name in ("tiny-a", "tiny-b")]
    md, page = write_comparison(root, folders)
    first = page.read_text()
    assert write_comparison(root, folders)[1].read_text() == first  # its own file: rewritten
    page.write_text("<p>mine</p>")
    with pytest.raises(InterpError, match="not a comparison interp wrote"):
        write_comparison(root, folders)
    assert page.read_text() == "<p>mine</p>"
    write_comparison(root, folders, overwrite=True)  # --force: the user said so
    assert page.read_text() == first
    md.unlink()
    md.symlink_to(elsewhere / "keep.txt")
    with pytest.raises(InterpError, match="symbolic link"):
        write_comparison(root, folders, overwrite=True)
    assert (elsewhere / "keep.txt").read_text() == "the user's own file\n"
