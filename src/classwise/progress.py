"""Progress for long loops: a rich bar on a terminal, a few plain lines otherwise (logs, CI),
and the same updates for Python code through hooks (`progress_hook`).

Two shapes: `progress(items, desc)` wraps a loop; a `Tracker` is updated by hand where the work
is not a loop of ours (AutoAttack's ensemble reports through it). Both send every update to the
hooks as a `ProgressEvent`; what they print obeys `QUIET` (the CLI's --quiet), the hooks do not."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, soft_wrap=True)  # a log line is one line, whatever the width
QUIET = False  # set by the CLI's --quiet
PLAIN_EVERY = 30.0
_HOOKS: list[Callable[[ProgressEvent], None]] = []
_LIVE: list[Progress] = []  # the rich display on screen, if any (rich allows one at a time)


@dataclass
class ProgressEvent:
    """One update: `done` of `total` items of the task `desc`, `elapsed` seconds since it
    started, `eta` seconds left (None when not known yet), `info` what the task adds (AutoAttack:
    `attack`, `robust` so far), `finished` on its last update."""

    desc: str
    done: float
    total: float
    elapsed: float
    eta: float | None = None
    info: dict = field(default_factory=dict)
    finished: bool = False


def add_hook(fn: Callable[[ProgressEvent], None]) -> None:
    _HOOKS.append(fn)


def remove_hook(fn: Callable[[ProgressEvent], None]) -> None:
    if fn in _HOOKS:
        _HOOKS.remove(fn)


@contextmanager
def progress_hook(fn: Callable[[ProgressEvent], None]):
    """`with progress_hook(print): cw.evaluate(...)`: `fn` gets every progress update (a
    `ProgressEvent`) of what runs inside, printed or not."""
    add_hook(fn)
    try:
        yield fn
    finally:
        remove_hook(fn)


def _emit(event: ProgressEvent) -> None:
    for fn in list(_HOOKS):
        fn(event)


def minutes(seconds: float) -> str:
    """A duration as people say it: `40 s`, `3 min`, `1 h 25 min`."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {round(seconds % 3600 / 60)} min"


def _columns():
    return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn())


@contextmanager
def _bar():
    """The rich display to add a task to: the one on screen, else a new one for the duration."""
    if _LIVE:
        yield _LIVE[-1]
        return
    with Progress(*_columns(), console=console, transient=True) as bar:
        _LIVE.append(bar)
        try:
            yield bar
        finally:
            _LIVE.remove(bar)


def progress(items: Iterable, desc: str | None = None, total_items: int | None = None,
             step_items: int = 1) -> Iterator:
    """Yield from `items`, reporting progress in units of items processed (e.g. images:
    `total_items` in steps of `step_items` per element)."""
    if desc is None or (QUIET and not _HOOKS):
        yield from items
        return
    items = list(items) if not hasattr(items, "__len__") else items
    total = total_items if total_items is not None else len(items)
    tracker = Tracker(desc, total)
    try:
        for item in items:
            yield item
            tracker.update(min(tracker.done + step_items, total))
    finally:
        tracker.close()


class Tracker:
    """Progress of one task updated by hand: `update(done, **info)`, then `close()`. On a
    terminal a bar (a row of the bar on screen, if there is one); otherwise a plain line every
    PLAIN_EVERY seconds and one at the end if it took a while. `info` is shown after the counts
    (`text`, or `key value` pairs) and passed to the hooks."""

    def __init__(self, desc: str, total: float, *, unit: str = "", show: bool = True):
        self.desc, self.total, self.unit = desc, total, unit
        self.done, self.info = 0.0, {}
        self.start = self._last = time.perf_counter()
        self._print = show and not QUIET
        self._ctx = self._bar = self._task = None
        if self._print and console.is_terminal:
            self._ctx = _bar()
            self._bar = self._ctx.__enter__()
            self._task = self._bar.add_task(desc, total=total)

    def eta(self) -> float | None:
        elapsed = time.perf_counter() - self.start
        if self.done <= 0 or elapsed < 1:
            return None
        return elapsed / self.done * max(self.total - self.done, 0)

    def _text(self) -> str:
        extra = self.info.get("text") or ", ".join(f"{k} {v}" for k, v in self.info.items() if k != "attack")
        return f"{self.done:.0f}/{self.total:.0f}{self.unit}" + (f", {extra}" if extra else "")

    def update(self, done: float, **info) -> None:
        self.done = min(max(done, 0.0), self.total)
        self.info.update(info)
        now = time.perf_counter()
        eta = self.eta()
        _emit(ProgressEvent(self.desc, self.done, self.total, now - self.start, eta, dict(self.info)))
        if not self._print:
            return
        if self._bar is not None:
            extra = self.info.get("text")
            self._bar.update(self._task, completed=self.done,
                             description=f"{self.desc} ({extra})" if extra else self.desc)
        elif now - self._last >= PLAIN_EVERY and self.done < self.total:
            left = f", about {minutes(eta)} left" if eta is not None else ""
            print(f"{self.desc}: {self._text()} ({now - self.start:.0f}s{left})", file=sys.stderr, flush=True)
            self._last = now

    def close(self) -> None:
        elapsed = time.perf_counter() - self.start
        _emit(ProgressEvent(self.desc, self.done, self.total, elapsed, 0.0, dict(self.info), finished=True))
        if self._bar is not None:
            self._bar.remove_task(self._task)
            self._ctx.__exit__(None, None, None)
            self._bar = None
        elif self._print and elapsed >= 2:
            print(f"{self.desc}: {self._text()} done in {elapsed:.1f}s", file=sys.stderr, flush=True)
        self._print = False
