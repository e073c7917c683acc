"""What the lab's model is doing now, for GET /api/progress and the page's progress bars."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator

from interp.serve.limits import TooLargeError


class Progress:
    """What the model is doing now: task, stage, done / total. Written by the worker, read by
    GET /api/progress; `wrap` is the tqdm-shaped callable the analyses accept as `progress=`."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self.task: str | None = None
        self.stage = ""
        self.done = 0
        self.total: int | None = None
        self.started = 0.0
        self.seconds: float | None = None  # the running task's time limit

    def start(self, task: str, seconds: float | None = None) -> None:
        with self._guard:
            self.task, self.stage, self.done, self.total, self.started = task, "starting", 0, None, time.monotonic()
            self.seconds = seconds

    def check_deadline(self) -> None:
        """Refuse to go on once the task has run past its limit (checked between steps, never inside one)."""
        if self.task is not None and self.seconds is not None and time.monotonic() - self.started > self.seconds:
            raise TooLargeError(f"The {self.task} ran past this server's limit of {self.seconds:g} s per task and was "
                                "stopped; ask for less (fewer samples, kinds or tokens).")

    def finish(self) -> None:
        with self._guard:
            self.task, self.stage, self.done, self.total, self.seconds = None, "", 0, None, None

    def set_stage(self, stage: str, total: int | None = None) -> None:
        self.check_deadline()
        with self._guard:
            self.stage, self.done, self.total = stage, 0, total

    def wrap(self, iterable: Iterable | None = None, desc: str = "", total: int | None = None, **_) -> Iterator:
        items = list(iterable) if iterable is not None else []
        self.set_stage(desc or self.stage, total or len(items))
        for item in items:
            self.check_deadline()
            yield item
            with self._guard:
                self.done += 1

    def snapshot(self) -> dict:
        with self._guard:
            fraction = self.done / self.total if self.total else None
            return {"busy": self.task is not None, "task": self.task, "stage": self.stage, "done": self.done,
                    "total": self.total, "fraction": fraction,
                    "seconds": round(time.monotonic() - self.started, 1) if self.task else 0.0}

    def describe(self) -> str:
        s = self.snapshot()
        where = f"{s['stage']}, {s['done']}/{s['total']}" if s["total"] else s["stage"]
        return f"{s['task']} ({where})" if where else str(s["task"])
