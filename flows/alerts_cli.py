"""`switchboard alerts list|send`: the alerts raised (flows/alerts.py) and their deliveries; send the undelivered now."""
from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from core.commands import load_settings

console = Console(width=None if sys.stdout.isatty() else 200)  # piped output: one line per row, never wrapped


@click.group()
def alerts() -> None:
    """Alerts raised for failures (ids only) and where each was delivered."""


@alerts.command("list")
@click.option("--limit", type=int, default=50, show_default=True)
def alerts_list(limit: int) -> None:
    """The newest alerts: kind, how often raised, where to act, each target's delivery state."""
    from flows import alerts as alerts_flow
    load_settings()
    rows = alerts_flow.listing(limit)
    table = Table("id", "kind", "raised", "act", "deliveries")
    for row in rows:
        act = row["command"] or row["url"] or ""
        table.add_row(str(row["id"]), row["kind"], str(row["raised"]), act,
                      ", ".join(f"{target} {state}" for target, state in row["deliveries"].items()))
    console.print(table)
    console.print(f"{len(rows)} alert(s)")


@alerts.command("send")
def alerts_send() -> None:
    """Try every undelivered alert again, here and now (a target was down)."""
    from flows import alerts as alerts_flow
    load_settings()
    sent, failed = alerts_flow.send_pending()
    console.print(f"{sent} delivered, {failed} still failing")
    if failed:
        raise SystemExit(1)
