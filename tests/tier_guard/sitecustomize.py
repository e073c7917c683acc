"""The fast tier's guard in the test's child processes (`tests/conftest.py` puts this folder first on the
PYTHONPATH of every fast test): a child that loads a real model or imports Ray writes one line to the file
named by INTERP_TIER_GUARD_LOG, which fails the test that started it, and stops with exit status 86."""

from __future__ import annotations

import os
import sys

LOG = os.environ.get("INTERP_TIER_GUARD_LOG")


def _violation(what: str) -> None:
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(f"a child process ({' '.join(sys.argv)[:200]}) {what}\n")
    os._exit(86)  # nothing may catch it: the load must not happen


class _Guard:
    """An import hook: Ray is refused, and the model registry is patched the moment it is imported."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "ray" or fullname.startswith("ray."):
            _violation("imported Ray")
        if fullname != "interp.model.registry":
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        real_exec = spec.loader.exec_module

        def exec_module(module):
            real_exec(module)
            import dataclasses

            for name, model in list(module.MODELS.items()):
                module.MODELS[name] = dataclasses.replace(
                    model, locate=lambda name=name: _violation(f"loaded the real model {name}"))

        spec.loader.exec_module = exec_module
        return spec


if LOG:
    sys.meta_path.insert(0, _Guard())
