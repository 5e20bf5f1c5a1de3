"""Ops command: `switchboard sync [--since ...]`, one reconciliation run, with progress."""
from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from core import progress
from core.commands import load_settings, moment_option

console = Console(width=None if sys.stdout.isatty() else 200)  # piped output: one line per row, never wrapped
errors = Console(stderr=True)



@click.command()
@click.option("--since", default=None, metavar="WHEN",
              help="Start a new window at this UTC date or date-time instead of resuming from the cursor.")
def sync(since: str | None) -> None:
    """Reconcile HappyFox, HubSpot and Switchboard: repair missing mirrors and links, wrong stages, stale statuses
    and closed tickets without a survey, for what changed since the cursor."""
    from flows.closure import reconcile
    start = moment_option(since)
    load_settings(vendors=True)
    try:
        with progress.bars() as on_step:
            report = reconcile.reconcile(since=start, on_step=on_step)
    except reconcile.Busy as exc:
        errors.print(f"[yellow]{exc}[/yellow]")
        sys.exit(1)
    window = f"since {report.since:%Y-%m-%d %H:%M} UTC" + (" (resumed)" if report.resumed else "")
    for failure in report.failed:
        errors.print(f"[red]not repaired[/red] {failure}", highlight=False)
    if not report.fixes:
        console.print(f"checked {report.checked} ticket(s) {window}: nothing to fix")
        return
    table = Table("fix", "ticket", "detail")
    for fix in report.fixes:
        table.add_row(fix.kind, str(fix.ticket_id), fix.detail)
    console.print(table)
    counts = ", ".join(f"{kind.replace('_', ' ')}: {n}" for kind, n in report.counts().items() if n)
    console.print(f"checked {report.checked} ticket(s) {window}; fixed {len(report.fixes)} ({counts})")
