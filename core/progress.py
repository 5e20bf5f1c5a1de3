"""Progress of long ops commands (erase, export, sync, retention sweep, report): rich bars on stderr while it is an
interactive terminal, nothing at all otherwise, so that CI and log drains get only the command's result lines.
Rich's own variables decide what counts as a terminal: `TTY_COMPATIBLE=1 TTY_INTERACTIVE=1` draws the bars into a
pipe, `TTY_COMPATIBLE=0` never draws them (see docs/decisions.md).

Flows never print. Each long flow takes an optional `on_step(name, done, total)` and calls it as work gets done:
one bar per name, `total=None` while the total is unknown. `bars()` makes one for a command; `quiet` is the default.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

Step = Callable[[str, int, int | None], None]


def quiet(name: str, done: int, total: int | None = None) -> None:
    """The Step of a flow that runs without a command around it (a job, a test)."""


@contextmanager
def bars(console: Console | None = None) -> Iterator[Step]:
    """A Step that draws one bar per name on `console` (the commands' stderr console) while the block runs. When the
    block ends, a bar whose total was unknown takes its count as total, one that reached it is ticked and one left
    short of it is crossed and marked not done."""
    if console is None:
        from core.commands import console as shared  # here, not above: flows import this module for `quiet` alone
        console = shared
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress = Progress(SpinnerColumn(), *columns, console=console, disable=not console.is_interactive)
    tasks: dict[str, TaskID] = {}

    def on_step(name: str, done: int, total: int | None = None) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(name, total=total)
        progress.update(tasks[name], completed=done, total=total)

    with progress, _logs_above():
        try:
            yield on_step
        finally:
            for task in progress.tasks:
                total = task.completed if task.total is None else task.total
                short = task.completed < total
                progress.update(task.id, total=total, mark="[red]✗[/red]" if short else "[green]✓[/green]",
                                description=f"{task.description}: [red]not done[/red]" if short else task.description)
            progress.columns = (TextColumn("{task.fields[mark]}"), *columns)  # the spinners stop as ticks and crosses


@contextmanager
def _logs_above() -> Iterator[None]:
    """Log lines (retry warnings) printed above the bars instead of through them. The live display redirects
    sys.stderr while it runs; the log handlers keep the stream they were made with, so they follow for as long."""
    redirected = sys.stderr
    original = getattr(redirected, "rich_proxied_file", None)
    moved = [handler for handler in logging.getLogger().handlers
             if original is not None and isinstance(handler, logging.StreamHandler) and handler.stream is original]
    for handler in moved:
        handler.setStream(redirected)
    try:
        yield
    finally:
        for handler in moved:
            handler.setStream(original)
