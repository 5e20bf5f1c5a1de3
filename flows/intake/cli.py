"""Ops commands of intake: `switchboard ticket create` (a report staff enter by hand) and `switchboard sla report`
(the tickets that missed their confirmation or first-response deadline).

`ticket create` is the staff path for channels Switchboard does not receive itself (post, fax, social media, in
person): the report is validated by the same model as the admin API (`core.reports.ManualReport`), stored in the
inbox as kind "manual" and run through the same intake, here and now, so the command can print the ticket id.
"""
from __future__ import annotations

import base64
import mimetypes
import sys
import uuid
from datetime import datetime
from pathlib import Path

import click
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from core.commands import load_settings, local_time, moment_option, require_vendors
from core.reports import ManualReport

console = Console(width=None if sys.stdout.isatty() else 200)  # piped output: one line per row, never wrapped
errors = Console(stderr=True)


@click.group()
def ticket() -> None:
    """Tickets entered by staff."""


@ticket.command("create")
@click.option("--channel", required=True, type=click.Choice(["post", "fax", "social", "in_person", "phone",
                                                             "email"]))
@click.option("--email", default=None)
@click.option("--phone", default=None)
@click.option("--first-name", default=None)
@click.option("--last-name", default=None)
@click.option("--subject", required=True)
@click.option("--details", default="")
@click.option("--category", default="egyeb", show_default=True, help="A category key from the YAML.")
@click.option("--language", type=click.Choice(["hu", "en"]), default=None,
              help="Default: the customer's language from earlier tickets, else hu.")
@click.option("--received-at", "received_at", default=None, metavar="WHEN",
              help="When the report arrived (e.g. '2026-11-20 14:00', Budapest time unless it has an offset); "
                   "its deadlines count from it. Default: now.")
@click.option("--attach", "attach", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file that came with the report (repeatable).")
@click.option("--key", default=None, help="Idempotency key: running the command again with it does nothing new.")
@click.option("--queue", is_flag=True, help="Queue for a worker instead of running here.")
def ticket_create(channel: str, email: str | None, phone: str | None, first_name: str | None,
                  last_name: str | None, subject: str, details: str, category: str, language: str | None,
                  received_at: str | None, attach: tuple[Path, ...], key: str | None, queue: bool) -> None:
    """Record a report that came by post, fax, social media or in person, through the same intake as the form."""
    from core import store
    from core.models import Ticket
    from flows import dispatch
    from flows import inbox as inbox_flow
    loaded = load_settings()
    from core.reports import attachment_problems
    from core.workdays import BUDAPEST
    try:
        arrived = datetime.fromisoformat(received_at) if received_at else None
    except ValueError:
        errors.print("[red]received_at[/red]: expected a date and time, e.g. 2026-11-20 14:00")
        sys.exit(2)
    if arrived is not None and arrived.tzinfo is None:
        arrived = arrived.replace(tzinfo=BUDAPEST)  # staff read the time off a letter or a note, in Budapest
    files = [{"filename": path.name, "content_type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
              "data_b64": base64.b64encode(path.read_bytes()).decode()} for path in attach]
    try:
        # Validated from the raw option values, as the admin API's body is: the channel and language are
        # checked by the model, not assumed by a cast.
        report = ManualReport.model_validate(dict(
            channel=channel, email=email, phone=phone, first_name=first_name, last_name=last_name, subject=subject,
            details=details, category=category, language=language, received_at=arrived, attachments=files, key=key))
    except ValidationError as exc:
        for error in exc.errors():
            errors.print(f"[red]{'.'.join(map(str, error['loc'])) or 'report'}[/red]: {error['msg']}")
        sys.exit(2)
    if report.category not in loaded.config.categories:
        errors.print(f"[red]category[/red]: must be one of {', '.join(loaded.config.categories)}")
        sys.exit(2)
    too_long = report.too_long(loaded.config.input)
    problems = {**too_long, **attachment_problems(report, loaded.config)}
    for field_name, problem in problems.items():
        errors.print(f"[red]{field_name}[/red]: {problem}")
    if problems:
        sys.exit(2)
    require_vendors(loaded)  # after the report is checked, before anything is stored: nothing half-done
    with store.session() as s:
        row, created = store.put_inbox(s, "manual", report.key or str(uuid.uuid4()), "manual",
                                       report.model_dump(mode="json", exclude={"key"}))
        inbox_id = row.id
    if queue:
        if created:
            dispatch.process_inbox(inbox_id)
        console.print(f"inbox {inbox_id} {'queued' if created else 'already recorded'}")
        return
    try:
        dispatch.run(inbox_id)
    except Exception as exc:
        errors.print(f"[red]inbox {inbox_id} failed[/red]: {inbox_flow.reason(exc)}; a worker retries it")
        sys.exit(1)
    with store.session() as s:
        made = s.scalar(select(Ticket).where(Ticket.source_key == f"inbox:{inbox_id}"))
        if made is None:
            errors.print(f"[red]inbox {inbox_id}[/red]: no ticket (see `switchboard inbox list --status dead`)")
            sys.exit(1)
        console.print(f"ticket {made.happyfox_display_id or made.id} (inbox {inbox_id}, HubSpot ticket "
                      f"{made.hubspot_ticket_id})")


@click.group()
def sla() -> None:
    """The confirmation and first-response SLAs (2 working days each)."""


@sla.command("report")
@click.option("--since", default=None, metavar="WHEN", help="Only deadlines at or after this UTC date.")
def sla_report(since: str | None) -> None:
    """Every ticket whose customer was not confirmed within the deadline (times in Budapest)."""
    from flows.intake import sla as sla_flow
    start = moment_option(since)
    load_settings()
    found = sla_flow.breaches(since=start)
    table = Table("ticket", "HappyFox", "channel", "received", "due", "confirmed", "alerted")
    for b in found:
        table.add_row(str(b.ticket_id), b.display_id or "", b.channel, local_time(b.opened_at), local_time(b.due_at),
                      local_time(b.confirmed_at) or "not yet", local_time(b.alerted_at))
    console.print(table)
    console.print(f"{len(found)} breach(es)")
    from flows.intake import first_response
    waiting = first_response.pending(since=start)
    table = Table("ticket", "HappyFox", "channel", "received", "first response due", "state", "alerted",
                  title="Without a first staff response (reply in HappyFox or outbound call)")
    for w in waiting:
        state = "overdue" if w.overdue else "due" if w.due_now else "waiting"
        table.add_row(str(w.ticket_id), w.display_id or "", w.channel, local_time(w.opened_at), local_time(w.due_at), state,
                      w.alerted or "")
    console.print(table)
    console.print(f"{len(waiting)} ticket(s) without a first response, {sum(w.overdue for w in waiting)} overdue")
