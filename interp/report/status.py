"""The report's one progress line: which experiment runs, how far it is, and an estimate of the time left.

    [4/9] trace: facts 3/8 · 2:10 elapsed · about 1:45 left

On a terminal the line is redrawn in place (carriage return, erase to the end of the line) and the report's
own messages are printed above it; elsewhere (a log file, CI) the estimate goes on the line that announces
each experiment.

The estimate starts from each spec's ``seconds`` (its measured compute time on one thread; the mean of the
others where a spec has none) and is corrected by how fast this machine turned out to be on the experiments
finished so far; the running experiment's share comes from its own progress (the analysis' loops report
through `interp.progress`), once it has gone far enough to extrapolate from.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterable
from typing import TextIO

from interp.report.specs import ExperimentSpec

REDRAW_EVERY = 0.25  # seconds between two redraws of the line on a terminal
TRUST_FRACTION = 0.1  # the running experiment's own progress is extrapolated once it is this far


def clock(seconds: float) -> str:
    """1:05, 12:40, 1:02:03."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class StatusLine:
    """The progress line of one report run over `specs` (in run order)."""

    def __init__(self, specs: list[ExperimentSpec], stream: TextIO | None = None, live: bool | None = None,
                 now: Callable[[], float] = time.monotonic):
        self.specs, self.stream, self.now = list(specs), stream or sys.stderr, now
        self.live = self.stream.isatty() if live is None else live
        known = [s.seconds for s in self.specs if s.seconds is not None]
        fallback = sum(known) / len(known) if known else 60.0
        self.estimate = {s.name: float(s.seconds if s.seconds is not None else fallback) if s.enabled else 0.0
                         for s in self.specs}
        self.start, self.finished = now(), set()
        self.measured = [0.0, 0.0]  # (estimated, actual) seconds of experiments computed in this run
        self.current: ExperimentSpec | None = None
        self.current_start = self.start
        self.loops: list[list] = []  # the running experiment's open loops: [desc, done, total]
        self.shown, self.last_draw = "", 0.0

    # ----------------------------------------------------------------------------------- the estimate

    def speed(self) -> float:
        """Actual over estimated seconds on the experiments computed so far (1 before any)."""
        estimated, actual = self.measured
        return actual / estimated if estimated > 1.0 else 1.0

    def fraction(self) -> float:
        """How far the running experiment is, from its open loops (outermost first)."""
        done, scale = 0.0, 1.0
        for _, i, total in self.loops:
            if not total:
                break
            done += scale * min(i, total) / total
            scale /= total
        return min(done, 1.0)

    def left(self) -> float:
        """Seconds left: the queued experiments' estimates, and the running one's remainder."""
        speed = self.speed()
        queued = sum(self.estimate[s.name] for s in self.specs
                     if s.name not in self.finished and s is not self.current) * speed
        if self.current is None:
            return queued
        spent, frac = self.now() - self.current_start, self.fraction()
        if frac >= TRUST_FRACTION:
            running = spent * (1 - frac) / frac
        else:
            running = max(self.estimate[self.current.name] * speed - spent, 0.0)
        return queued + running

    # ------------------------------------------------------------------------------------- the events

    def begin(self, spec: ExperimentSpec) -> None:
        self.current, self.current_start, self.loops = spec, self.now(), []
        self.draw(always=True)

    def eta(self) -> str:
        """' (about 3:20 left)' for the line that announces an experiment where there is no live line."""
        return "" if self.live else f" (about {clock(self.left())} left)"

    def end(self, spec: ExperimentSpec, computed: bool) -> None:
        """An experiment is done: computed ones teach the estimate how fast this machine is."""
        if computed and self.estimate[spec.name] > 0:
            self.measured[0] += self.estimate[spec.name]
            self.measured[1] += self.now() - self.current_start
        self.finished.add(spec.name)
        self.current, self.loops = None, []

    def progress(self, iterable: Iterable, desc: str = "", total: int | None = None) -> Iterable:
        """The `interp.progress` protocol: the analysis' loops move the line (and the estimate)."""
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        loop = [desc, 0, total]
        self.loops.append(loop)
        try:
            for item in iterable:
                yield item
                loop[1] += 1
                self.draw()
        finally:
            if loop in self.loops:
                self.loops.remove(loop)

    def echo(self, write: Callable[[str], None]) -> Callable[[str], None]:
        """`write`, with the line taken away before each message and put back after it."""
        def wrapped(message: str) -> None:
            self.clear()
            write(message)
            self.draw(always=True)

        return wrapped

    # ---------------------------------------------------------------------------------------- drawing

    def _label(self) -> str:
        if self.current is None:
            return f"[{len(self.finished)}/{len(self.specs)}]"
        index = next(i for i, s in enumerate(self.specs, 1) if s is self.current)
        return f"[{index}/{len(self.specs)}] {self.current.name}"

    def text(self) -> str:
        parts = [self._label()]
        inner = [f"{d or 'step'} {i}/{t}" if t else f"{d or 'step'} {i}" for d, i, t in self.loops]
        if inner:
            parts[0] += ": " + inner[-1]
        parts.append(f"{clock(self.now() - self.start)} elapsed")
        parts.append(f"about {clock(self.left())} left")
        return " · ".join(parts)

    def draw(self, always: bool = False) -> None:
        if not self.live or self.current is None:
            return
        t = self.now()
        if not always and t - self.last_draw < REDRAW_EVERY:
            return
        width = shutil.get_terminal_size((100, 20)).columns - 1  # a wrapped line could not be redrawn in place
        self.last_draw, self.shown = t, self.text()[:width]
        self.stream.write("\r" + self.shown + "\x1b[K")
        self.stream.flush()

    def clear(self) -> None:
        if self.live and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = ""

