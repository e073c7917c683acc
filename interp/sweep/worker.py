"""The Ray actor of a sweep: it loads the model once and runs shards on it.

A shard is a function reference ("module:function") and its payload; the function is called as
``function(model, payload, state)`` where `state` is a dict this worker keeps between shards (for what is
computed once per worker, such as ROME's statistics). After every shard, finished or failed, the MLP
output matrices (what ROME and MEMIT edit) are compared with the copies taken at load time and put back
where they differ, so no edit leaks from one shard into the next. A user error in a shard comes back as
a `ShardError` (its one sentence), anything else as Ray's error with the remote traceback.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """What a worker loads: `interp.model.load.load_model(name, dtype, device)`."""

    name: str
    device: str = "auto"
    dtype: str = "float32"

    def __call__(self):
        from interp.model.load import load_model

        return load_model(self.name, dtype=self.dtype, device=self.device)


@dataclass(frozen=True)
class ShardError:
    """A user error (InterpError) raised by a shard: the driver raises it again as one sentence."""

    message: str


def resolve(ref: str) -> Callable:
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


class Worker:
    """One model, many shards (wrapped with `ray.remote` by the engine)."""

    def __init__(self, factory: Callable, threads: int | None = None):
        import torch

        from interp.errors import InterpError

        if threads:
            torch.set_num_threads(threads)
        self.state: dict = {}
        self.error = None
        try:
            self.model = factory()
        except InterpError as exc:  # a model that cannot load: said once by the driver, as one sentence
            self.model, self.error, self.originals = None, str(exc), {}
            return
        self.originals = {i: b.mlp.w_out.detach().clone() for i, b in enumerate(self.model.blocks)}

    def info(self) -> dict:
        import torch

        if self.model is None:
            return {"pid": os.getpid(), "error": self.error}
        cfg = self.model.cfg
        return {"pid": os.getpid(), "name": cfg.name, "n_layers": cfg.n_layers, "threads": torch.get_num_threads()}

    def run(self, ref: str, payload: Any) -> Any:
        from interp.errors import InterpError

        if self.model is None:
            return ShardError(self.error)
        try:
            return resolve(ref)(self.model, payload, self.state)
        except InterpError as exc:
            return ShardError(str(exc))
        finally:
            self.restore()

    def restore(self) -> int:
        """Put back every MLP output matrix a shard changed; how many were."""
        import torch

        changed = 0
        with torch.no_grad():
            for i, original in self.originals.items():
                w = self.model.blocks[i].mlp.w_out
                if not torch.equal(w, original):
                    w.copy_(original)
                    changed += 1
        return changed
