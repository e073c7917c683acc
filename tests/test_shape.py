"""The code keeps one shape: one HTML escaper, no modules that only re-export another's names, no hooks that
keep old import paths alive, and every experiment spec runs an analysis of the registry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from interp.analysis.registry import ANALYSES
from interp.report.specs import load_specs

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("interp", "cli") for p in (ROOT / d).rglob("*.py"))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_one_html_escaper():
    """interp.markdown.esc is the one: a second copy drifts (compare's did: it left quotes unescaped)."""
    others = [_rel(p) for p in SOURCES if _rel(p) != "interp/markdown.py"
              and ("html.escape" in p.read_text() or "import html\n" in p.read_text())]
    assert not others, f"HTML escaped outside interp.markdown.esc in {others}"


def _only_reexports(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # the docstring
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__all__"]:
            continue
        return False
    return True


def test_no_shim_modules():
    shims = [_rel(p) for p in SOURCES if p.name != "__init__.py" and _only_reexports(ast.parse(p.read_text()))]
    assert not shims, f"modules that only re-export other modules' names: {shims}; import the real module"


def _defines_getattr(tree: ast.Module) -> bool:
    return any((isinstance(n, ast.FunctionDef) and n.name == "__getattr__") or
               (isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__getattr__" for t in n.targets))
               for n in tree.body)


def test_no_module_getattr_outside_packages():
    """A module-level __getattr__ outside a package's __init__ is a hook that keeps an old import path alive."""
    hooks = [_rel(p) for p in SOURCES if p.name != "__init__.py" and _defines_getattr(ast.parse(p.read_text()))]
    assert not hooks, f"module-level __getattr__ in {hooks}"


def test_the_checks_above_can_fail():
    shim = ast.parse('"""Moved."""\nfrom interp.jsonio import dumps\n__all__ = ["dumps"]\n')
    assert _only_reexports(shim) and not _only_reexports(ast.parse("import os\nX = 1\n"))
    assert _defines_getattr(ast.parse("__getattr__ = lazy_attributes('m', {})\n"))
    assert _defines_getattr(ast.parse("def __getattr__(name):\n    pass\n"))


@pytest.mark.parametrize("spec", load_specs(ROOT / "experiments"), ids=lambda s: s.name)
def test_every_experiment_runs_a_registered_analysis(spec):
    import shlex

    from interp.analysis.registry import resolve
    from interp.report.specs import import_object

    run = import_object(spec.analysis)
    entry = next((a for a in ANALYSES.values() if resolve(a.run) is run), None)
    assert entry is not None, f"{spec.name} runs {spec.analysis}, which interp.analysis.registry does not list"
    if spec.params_class:
        assert import_object(spec.params_class) is resolve(entry.params)
    if spec.command:
        assert shlex.split(spec.command)[1] == entry.name


def test_a_spec_can_name_its_analysis_by_its_registered_name(tmp_path):
    from interp.errors import DataFormatError
    from interp.report.specs import parse_spec

    path = tmp_path / "heads.toml"
    path.write_text('name = "heads"\ntitle = "Heads"\nanalysis = "attention-viewer"\n[params]\nn_heads = 2\n')
    spec = parse_spec(path)
    assert (spec.analysis, spec.params_class) == (ANALYSES["attention-viewer"].run, ANALYSES["attention-viewer"].params)
    path.write_text('name = "heads"\ntitle = "Heads"\nanalysis = "no-such-analysis"\n')
    with pytest.raises(DataFormatError, match="package.module:function"):
        parse_spec(path)


@pytest.mark.parametrize("name", sorted(ANALYSES))
def test_each_registration_resolves_to_one_consistent_analysis(name):
    import dataclasses

    from interp.analysis.registry import resolve
    from interp.analysis.result import ResultBase

    from cli.main import HELP, cli

    entry = ANALYSES[name]
    assert callable(resolve(entry.run)) and resolve(entry.run).__name__ == entry.entry_name
    params = resolve(entry.params)
    assert dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen
    result = resolve(entry.result)
    assert issubclass(result, ResultBase) and result.cli_name == name
    command = cli.get_command(None, name)
    assert command is not None and callable(command.params_from_options) and HELP[name] == entry.help
    on_workers = any(p.name == "workers" for p in command.params)
    assert on_workers == (entry.sharded is not None)  # --workers exactly where a sharded driver exists
    if entry.sharded:
        assert callable(resolve(entry.sharded))


def test_analysis_modules_keep_no_reexports():
    """An analysis module imports what it uses; a name kept importable from a second place is an old path."""
    kept = [_rel(p) for p in SOURCES if p.name != "__init__.py" and _rel(p).startswith(("interp/analysis/", "cli/"))
            and "re-export" in p.read_text()]
    assert not kept, f"re-exports kept in {kept}; import each name from the module that defines it"
