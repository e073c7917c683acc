"""`Sweep`: shards onto Ray actors, each with its own copy of the model; outputs back in shard order.

    sweep = Sweep.start(ModelSpec("smollm2-135m"), workers=2, key={...})
    outputs = sweep.map("interp.sweep.tasks.trace:trace_facts", [(description, payload), ...])

`map` returns one output per shard, in the order given, whatever order the workers finish in: the
merge is then the serial run's. A finished shard goes to the shard cache at once, and a shard already
there is not sent out again. Each actor holds one shard at a time; when its process dies (killed, out of
memory, a lost node), the shard goes back to the front of the queue for the next free worker and a fresh
actor takes the dead one's place, up to `max_attempts` tries per shard. One tqdm bar on stderr counts
every shard of every `map` call of the sweep.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from interp.errors import InterpError
from interp.sweep.cache import MISSING, ShardCache
from interp.sweep.runtime import Runtime, start
from interp.sweep.worker import ShardError, Worker


class Sweep:
    def __init__(self, runtime: Runtime, factory: Callable, cache: ShardCache, progress: bool = True,
                 threads: int | None = None, max_attempts: int = 3, on_dispatch: Callable | None = None,
                 on_result: Callable | None = None, own_runtime: bool = False):
        ray = runtime.ray
        self.own_runtime = own_runtime
        if threads is None:  # the serial run's thread count: kernels then split their sums alike, bit for bit
            import torch

            threads = torch.get_num_threads()
        self.runtime, self.ray, self.factory, self.cache, self.threads = runtime, ray, factory, cache, threads
        self.max_attempts, self.on_dispatch, self.on_result = max_attempts, on_dispatch, on_result
        self.remote = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(Worker)
        t0 = time.perf_counter()
        self.actors = [self._new_actor() for _ in range(runtime.workers)]
        infos = ray.get([a.info.remote() for a in self.actors])
        self.startup_seconds = time.perf_counter() - t0  # actors started and every model loaded
        errors = [i["error"] for i in infos if i.get("error")]
        if errors:
            self.close()
            raise InterpError(errors[0])
        self.info = infos[0]
        self.infos: list[dict | None] = infos  # per actor (None: a replacement not asked yet)
        self.replaced = 0  # actors started again after their process died
        self.computed = 0  # shards run in this process (not read from the cache)
        self.bar = _bar() if progress else None

    @classmethod
    def start(cls, factory: Callable, workers: int | None = None, address: str | None = None, key: Any = None,
              cache: bool = True, runtime: Runtime | None = None, **kwargs) -> Sweep:
        """Start one actor per worker, each loading the model, on `runtime` (kept open at the end) or on a
        runtime joined or started here (`runtime.start`; closed with the sweep)."""
        own = runtime is None
        runtime = runtime or start(workers, address)
        try:
            return cls(runtime, factory, ShardCache(key, enabled=cache), own_runtime=own, **kwargs)
        except BaseException:
            if own:
                runtime.close()
            raise

    def _new_actor(self):
        return self.remote.remote(self.factory, self.threads)

    def pid_of(self, actor) -> int:
        """The process id of one of this sweep's actors."""
        i = self.actors.index(actor)
        if self.infos[i] is None:
            self.infos[i] = self.ray.get(actor.info.remote())
        return self.infos[i]["pid"]

    def pids(self) -> list[int]:
        return [self.pid_of(a) for a in self.actors]

    def map(self, ref: str, shards: list[tuple[Any, Any]], label: str = "") -> list:
        """Run `ref(model, payload, state)` for every (description, payload); outputs in shard order."""
        ray = self.ray
        from ray.exceptions import RayActorError, WorkerCrashedError

        out: list = [MISSING] * len(shards)
        for i, (desc, _) in enumerate(shards):
            out[i] = self.cache.get((ref, desc))
        pending = deque(i for i, v in enumerate(out) if v is MISSING)
        self._grow(len(shards), len(shards) - len(pending), label)
        attempts = [0] * len(shards)
        idle, running = list(self.actors), {}
        while pending or running:
            while pending and idle:
                actor, i = idle.pop(0), pending.popleft()
                attempts[i] += 1
                running[actor.run.remote(ref, shards[i][1])] = (actor, i)
                if self.on_dispatch is not None:
                    self.on_dispatch(self, actor, i)
            ready, _ = ray.wait(list(running), num_returns=1)
            future = ready[0]
            actor, i = running.pop(future)
            try:
                value = ray.get(future)
            except (RayActorError, WorkerCrashedError):
                if attempts[i] >= self.max_attempts:
                    raise InterpError(f"Shard {i + 1} of {label or ref} failed {attempts[i]} times because its worker "
                                      "died each time; see the Ray logs (/tmp/ray/session_latest/logs).") from None
                pending.appendleft(i)  # retried on the next free worker
                idle.append(self._replace(actor))
                continue
            if isinstance(value, ShardError):
                raise InterpError(value.message)
            out[i] = value
            self.cache.put((ref, shards[i][0]), value)
            self.computed += 1
            idle.append(actor)
            if self.bar is not None:
                self.bar.update(1)
            if self.on_result is not None:
                self.on_result(self, i)
        return out

    def _replace(self, dead):
        self.ray.kill(dead, no_restart=True)
        fresh = self._new_actor()
        i = self.actors.index(dead)
        self.actors[i], self.infos[i] = fresh, None
        self.replaced += 1
        return fresh

    def _grow(self, total: int, done: int, label: str) -> None:
        if self.bar is None:
            return
        self.bar.total = (self.bar.total or 0) + total
        if label:
            self.bar.set_description(f"shards ({label})")
        self.bar.update(done)
        self.bar.refresh()

    def close(self) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.close()
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []
        if self.own_runtime:
            self.runtime.close()

    def __enter__(self) -> Sweep:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _bar():
    from tqdm.auto import tqdm

    return tqdm(total=0, desc="shards", leave=False, dynamic_ncols=True, file=sys.stderr, unit="shard")
