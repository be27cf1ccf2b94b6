"""Progress for long loops: a rich bar on a terminal, a few plain lines otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
QUIET = False  # set by the CLI's --quiet
PLAIN_EVERY = 30.0


def progress(items: Iterable, desc: str | None = None, total_items: int | None = None,
             step_items: int = 1) -> Iterator:
    """Yield from `items`, reporting progress in units of items processed (e.g. images:
    `total_items` in steps of `step_items` per element)."""
    if desc is None or QUIET:
        yield from items
        return
    items = list(items) if not hasattr(items, "__len__") else items
    total = total_items if total_items is not None else len(items)
    if sys.stderr.isatty():
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(desc, total=total)
            for item in items:
                yield item
                bar.advance(task, min(step_items, total - bar.tasks[0].completed))
        return
    # plain lines for logs: one every PLAIN_EVERY seconds, and a last one if it took a while
    start = last = time.perf_counter()
    done = 0
    for item in items:
        yield item
        done = min(done + step_items, total)
        now = time.perf_counter()
        if now - last >= PLAIN_EVERY and done < total:
            print(f"{desc}: {done}/{total} ({now - start:.0f}s)", file=sys.stderr, flush=True)
            last = now
    if time.perf_counter() - start >= 2:
        print(f"{desc}: {total}/{total} done in {time.perf_counter() - start:.1f}s", file=sys.stderr)
