"""Ops commands of the complaint register: `switchboard complaints due` and `switchboard report complaints`.

`report` is a group so that other reports can sit beside this one (`report <name>`); add a subcommand to it
here or register another group's command with `report.add_command(...)`.
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from core import progress
from core.commands import load_settings
from flows.complaints import complaint_deadlines, complaint_report

console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True)


@click.group()
def complaints() -> None:
    """The complaint register (policy 004)."""


@complaints.command("due")
@click.option("--all", "show_all", is_flag=True, help="Every pending deadline, not only the due and overdue.")
@click.option("--alert", is_flag=True, help="Also send the alerts not sent yet (the clock does this every 15 min).")
def complaints_due(show_all: bool, alert: bool) -> None:
    """Deadlines of open complaints that are due (from the working day before) or overdue."""
    from core.workdays import BUDAPEST
    load_settings()
    if alert:
        sent = complaint_deadlines.alert()
        errors.print(f"{len(sent)} alert(s) sent")
    now = datetime.now(timezone.utc)
    found = complaint_deadlines.items(now, include_later=show_all)
    table = Table("complaint", "ticket", "kind", "due (Budapest)", "state", "responsible", "alerted")
    for item in found:
        state = "[red]overdue[/red]" if item.overdue else "due" if now >= complaint_deadlines._window_start(
            item.due_at) else "later"
        table.add_row(str(item.complaint_id), item.display_id or f"#{item.ticket_id}", item.kind,
                      item.due_at.astimezone(BUDAPEST).strftime("%Y-%m-%d %H:%M"), state, item.responsible or "",
                      item.alerted or "")
    console.print(table)
    overdue = sum(item.overdue for item in found)
    console.print(f"{len(found)} deadline(s), {overdue} overdue")


@click.group()
def report() -> None:
    """Reports."""


@report.command("complaints")
@click.option("--quarter", default=None, help="The quarter, e.g. 2026Q3.")
@click.option("--register", "whole_register", is_flag=True,
              help="Write the whole register as CSV instead (one row per complaint, its twelve fields).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Directory for complaints-<quarter>.html, .pdf and .csv.")
@click.option("--language", type=click.Choice(["hu", "en"]), default=None, help="Default: complaints.language.")
@click.option("--send", is_flag=True, help="Also mail it to complaints.report_recipients (once per quarter).")
def report_complaints(quarter: str | None, whole_register: bool, out_dir: Path, language: str | None,
                      send: bool) -> None:
    """The quarterly complaint report (HTML, PDF and CSV), or with --register the whole register as CSV."""
    load_settings()
    if whole_register:
        path, count = complaint_report.write_register(out_dir, language)
        console.print(str(path))
        errors.print(f"{count} complaint(s)")
        return
    if quarter is None:
        raise click.UsageError("give --quarter (e.g. 2026Q3), or --register for the whole register")
    try:
        complaint_report.bounds(quarter)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--quarter") from None
    with progress.bars() as on_step:
        paths = complaint_report.write(quarter, out_dir, language, on_step)
        if send:
            sent = complaint_report.send(quarter, out_dir, on_step)  # rewrites the files in the configured language
            errors.print("mailed" if sent else "not mailed (already sent, or no recipients)")
    for path in paths.values():
        console.print(str(path))
