"""`switchboard audit list`: who did what, newest first. Actors are staff addresses (signed in to the
console), named script tokens (`script:<name>`), `cli` or a flow's name; details hold ids, counts and hashes only."""
from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from core.commands import load_settings

console = Console(width=None if sys.stdout.isatty() else 200)


@click.group()
def audit() -> None:
    """The audit trail."""


@audit.command("list")
@click.option("--actor", default=None, help="Only this actor (e.g. someone@example.com, script:backup).")
@click.option("--action", default=None, help='Only this action, or a prefix ending in "." (e.g. "staff.").')
@click.option("--customer", "customer_id", type=int, default=None, help="Only entries about this customer id.")
@click.option("--limit", type=int, default=50, show_default=True)
def audit_list(actor: str | None, action: str | None, customer_id: int | None, limit: int) -> None:
    """The newest audit entries."""
    from core import audit as trail
    from core import store
    load_settings()
    with store.session() as s:
        rows = trail.listing(s, actor=actor, action=action, customer_id=customer_id, limit=limit)
        table = Table("id", "at (UTC)", "actor", "action", "customer", "ticket", "detail")
        for r in rows:
            table.add_row(str(r.id), r.at.strftime("%Y-%m-%d %H:%M:%S"), r.actor, r.action,
                          str(r.customer_id or ""), str(r.ticket_id or ""),
                          json.dumps(r.detail, ensure_ascii=False, default=str) if r.detail else "")
    console.print(table)
    console.print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")
