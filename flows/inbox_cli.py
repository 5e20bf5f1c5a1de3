"""Ops commands for the inbox: `switchboard inbox list|replay`."""
from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from core.commands import load_settings

console = Console(width=None if sys.stdout.isatty() else 200)  # piped output: one line per row, never wrapped
errors = Console(stderr=True)
STATUSES = ("pending", "running", "failed", "dead", "held", "done")


@click.group()
def inbox() -> None:
    """Inbound events: list them by status, replay dead ones."""


@inbox.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only rows in this state.")
@click.option("--limit", type=int, default=50, show_default=True)
def inbox_list(status: str | None, limit: int) -> None:
    """The newest inbox rows (no payloads: they hold personal data)."""
    from core import store
    from core.models import InboxEvent
    load_settings()
    with store.session() as s:
        query = select(InboxEvent).order_by(InboxEvent.id.desc()).limit(limit)
        if status:
            query = query.where(InboxEvent.status == status)
        rows = s.scalars(query).all()
        table = Table("id", "source", "kind", "status", "attempts", "received (UTC)", "last error")
        for r in rows:
            table.add_row(str(r.id), r.source, r.kind, r.status, str(r.attempts),
                          r.received_at.strftime("%Y-%m-%d %H:%M:%S"), r.last_error or "")
    console.print(table)
    console.print(f"{len(rows)} row(s)" + (f" with status {status}" if status else ""))


@inbox.command("replay")
@click.argument("inbox_ids", nargs=-1, type=int)
@click.option("--all-dead", is_flag=True, help="Every dead row.")
@click.option("--now", "run_now", is_flag=True, help="Run here instead of queueing for a worker.")
def inbox_replay(inbox_ids: tuple[int, ...], all_dead: bool, run_now: bool) -> None:
    """Make dead (or failed) rows pending again and queue them."""
    from flows import dispatch
    from flows import inbox as inbox_flow
    load_settings()
    if not inbox_ids and not all_dead:
        raise click.UsageError("give inbox ids or --all-dead")
    ids = inbox_flow.replay(list(inbox_ids), all_dead=all_dead)
    missing = sorted(set(inbox_ids) - set(ids))
    if missing:
        errors.print(f"[yellow]not replayable (unknown, running or done):[/yellow] {', '.join(map(str, missing))}")
    failed = 0
    with click.progressbar(ids, label="replaying", file=sys.stderr) as bar:
        for inbox_id in bar:
            if not run_now:
                dispatch.process_inbox(inbox_id)
                continue
            try:
                dispatch.run(inbox_id)
            except Exception as exc:  # the row holds the reason; carry on with the others
                failed += 1
                errors.print(f"inbox {inbox_id}: {inbox_flow.reason(exc)}")
    verb = "ran" if run_now else "queued"
    console.print(f"{verb} {len(ids)} row(s)" + (f", {failed} failed again" if failed else ""))
    if missing or failed:
        sys.exit(1)
