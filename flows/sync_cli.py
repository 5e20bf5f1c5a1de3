"""Ops commands: `switchboard sync [--since ...]` (one reconciliation run, with progress) and
`switchboard sla report` (the tickets that missed their confirmation deadline)."""
from __future__ import annotations

import sys
from datetime import datetime, timezone

import click
from rich.console import Console
from rich.table import Table

from core import progress
from core.commands import load_settings

console = Console(width=None if sys.stdout.isatty() else 200)  # piped output: one line per row, never wrapped
errors = Console(stderr=True)


def _moment(value: str | None) -> datetime | None:
    """`2026-11-20`, `2026-11-20T08:00` or with a zone; a time without a zone is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("expected an ISO date or date-time, e.g. 2026-11-20 or 2026-11-20T08:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _local(moment: datetime | None) -> str:
    from core.workdays import BUDAPEST
    return moment.astimezone(BUDAPEST).strftime("%Y-%m-%d %H:%M") if moment else ""


@click.command()
@click.option("--since", default=None, metavar="WHEN",
              help="Start a new window at this UTC date or date-time instead of resuming from the cursor.")
def sync(since: str | None) -> None:
    """Reconcile HappyFox, HubSpot and Switchboard: repair missing mirrors and links, wrong stages, stale statuses
    and closed tickets without a survey, for what changed since the cursor."""
    from flows import reconcile
    start = _moment(since)
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


@click.group()
def sla() -> None:
    """The confirmation and first-response SLAs (2 working days each)."""


@sla.command("report")
@click.option("--since", default=None, metavar="WHEN", help="Only deadlines at or after this UTC date.")
def sla_report(since: str | None) -> None:
    """Every ticket whose customer was not confirmed within the deadline (times in Budapest)."""
    from flows import sla as sla_flow
    start = _moment(since)
    load_settings()
    found = sla_flow.breaches(since=start)
    table = Table("ticket", "HappyFox", "channel", "received", "due", "confirmed", "alerted")
    for b in found:
        table.add_row(str(b.ticket_id), b.display_id or "", b.channel, _local(b.opened_at), _local(b.due_at),
                      _local(b.confirmed_at) or "not yet", _local(b.alerted_at))
    console.print(table)
    console.print(f"{len(found)} breach(es)")
    from flows import first_response
    waiting = first_response.pending(since=start)
    table = Table("ticket", "HappyFox", "channel", "received", "first response due", "state", "alerted",
                  title="Without a first staff response (reply in HappyFox or outbound call)")
    for w in waiting:
        state = "overdue" if w.overdue else "due" if w.due_now else "waiting"
        table.add_row(str(w.ticket_id), w.display_id or "", w.channel, _local(w.opened_at), _local(w.due_at), state,
                      w.alerted or "")
    console.print(table)
    console.print(f"{len(waiting)} ticket(s) without a first response, {sum(w.overdue for w in waiting)} overdue")
