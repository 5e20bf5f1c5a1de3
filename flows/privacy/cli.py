"""Privacy ops commands (policy 002, docs/policy.md#personal-data): `switchboard erase`, `switchboard erasure
status|list|retry`, `switchboard export`, `switchboard retention preview|sweep|withdraw|hold`, `switchboard requests add|verify|extend|complete|refuse|lift|tasks|confirm|show|list`.

Nothing here prints an email or a phone number: requests are shown by id, subject hash and customer id.
"""
from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from core import progress
from core.addresses import InvalidAddress, mailbox
from core.commands import load_settings, moment_option
from flows.privacy import access
from flows.privacy import erasure as erasure_flow
from flows.privacy import requests as requests_flow
from flows.privacy import retention as retention_flow

console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True)


def _person(email: str | None, phone: str | None) -> None:
    if not email and not phone:
        raise click.UsageError("give --email or --phone")
    if email:
        try:
            mailbox(email)  # the same single-mailbox rule as every other way an address comes in
        except InvalidAddress as exc:
            raise click.BadParameter(str(exc), param_hint="--email") from None


def _print_status(data: dict[str, Any]) -> None:
    console.print(f"erasure {data['id']}: [bold]{data['status']}[/bold] (customer {data['customer_id']}, "
                  f"reason {data['reason']}, requested {data['requested_at']}, completed {data['completed_at']})")
    table = Table("step", "status", "attempts", "last error", "receipt")
    for step in data["steps"]:
        receipt = step["receipt"] or {}
        summary = json.dumps(receipt.get("counts", {})) if receipt else ""
        table.add_row(step["processor"], step["status"], str(step["attempts"]), step["last_error"] or "", summary)
    console.print(table)


@click.command()
@click.option("--email", default=None)
@click.option("--phone", default=None)
@click.option("--queue", is_flag=True, help="Queue the steps for a worker instead of running them here.")
def erase(email: str | None, phone: str | None, queue: bool) -> None:
    """Erase everything every processor and Switchboard hold about a person."""
    _person(email, phone)
    load_settings(vendors=not queue)
    try:
        erasure_id = erasure_flow.request(email=email, phone=phone, actor="cli")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if queue:
        erasure_flow.start(erasure_id)
        console.print(f"erasure {erasure_id} queued; `switchboard erasure status {erasure_id}` follows it")
        return
    with progress.bars() as on_step:
        result = erasure_flow.run(erasure_id, on_step)
    _print_status(erasure_flow.status(erasure_id))
    if result != "done":
        errors.print(f"[yellow]erasure {erasure_id} is not complete[/yellow]: a worker retries the failed steps")
        sys.exit(1)


@click.group()
def erasure() -> None:
    """Erasure requests: their steps, receipts and failures."""


@erasure.command("status")
@click.argument("erasure_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="The full receipts as JSON.")
def erasure_status(erasure_id: int, as_json: bool) -> None:
    load_settings()
    try:
        data = erasure_flow.status(erasure_id)
    except LookupError as exc:
        errors.print(str(exc))
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _print_status(data)
    if data["status"] != "done":
        sys.exit(3)


@erasure.command("list")
@click.option("--status", type=click.Choice(["pending", "failed", "done"]), default=None)
def erasure_list(status: str | None) -> None:
    load_settings()
    rows = erasure_flow.listing(status)
    table = Table("id", "customer", "reason", "status", "requested (UTC)", "steps")
    for row in rows:
        steps = " ".join(f"{name}:{state}" for name, state in row["steps"].items())
        table.add_row(str(row["id"]), str(row["customer_id"]), row["reason"], row["status"],
                      row["requested_at"][:19], steps)
    console.print(table)
    console.print(f"{len(rows)} request(s)")


@erasure.command("retry")
@click.argument("erasure_id", type=int)
@click.option("--now", "run_now", is_flag=True, help="Run here instead of queueing for a worker.")
def erasure_retry(erasure_id: int, run_now: bool) -> None:
    """Try the steps that are not done again."""
    load_settings(vendors=True)
    if run_now:
        with progress.bars() as on_step:
            erasure_flow.run(erasure_id, on_step)
        _print_status(erasure_flow.status(erasure_id))
    else:
        console.print(f"queued: {', '.join(erasure_flow.retry(erasure_id)) or 'nothing (all done)'}")


@click.command()
@click.option("--email", default=None)
@click.option("--phone", default=None)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for the JSON and HTML files (default: the data directory's exports/).")
def export(email: str | None, phone: str | None, out_dir: str | None) -> None:
    """Export everything every processor and Switchboard hold about a person (JSON + HTML)."""
    _person(email, phone)
    load_settings(vendors=True)
    try:
        with progress.bars() as on_step:
            result = access.export(email=email, phone=phone, out_dir=out_dir, on_step=on_step)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    console.print(f"written: {result.json_path}\n         {result.html_path}")
    if not result.complete:
        errors.print(f"[red]incomplete[/red]: {', '.join(f'{k} ({v})' for k, v in result.data['errors'].items())}")
        sys.exit(1)


@click.group()
def retention() -> None:
    """The retention schedule: who becomes due, the sweep, consent withdrawal, legal hold."""


@retention.command("preview")
@click.option("--days", type=int, default=30, show_default=True, help="Due within this many days.")
def retention_preview(days: int) -> None:
    load_settings()
    rows = retention_flow.due_within(days)
    table = Table("customer", "due on", "reason", "legal hold")
    for due in rows:
        table.add_row(str(due.customer_id), due.due_on.isoformat(), due.reason, "yes" if due.legal_hold else "")
    console.print(table)
    console.print(f"{len(rows)} customer(s) due within {days} day(s)")


@retention.command("sweep")
def retention_sweep() -> None:
    """Open an erasure request for every due customer not under legal hold (the clock does this daily)."""
    load_settings(vendors=True)
    with progress.bars() as on_step:
        opened = retention_flow.sweep(on_step=on_step)
    console.print(f"opened {len(opened)} erasure request(s)" + (f": {', '.join(map(str, opened))}" if opened else ""))


@retention.command("withdraw")
@click.option("--email", default=None)
@click.option("--phone", default=None)
def retention_withdraw(email: str | None, phone: str | None) -> None:
    """Record a withdrawal of consent: the person's data is due now."""
    _person(email, phone)
    load_settings()
    customer_id = retention_flow.withdraw_consent(email=email, phone=phone, actor="cli")
    if customer_id is None:
        errors.print("no customer matches")
        sys.exit(1)
    console.print(f"customer {customer_id}: consent withdrawn; the next sweep opens the erasure")


@retention.command("hold")
@click.option("--email", default=None)
@click.option("--phone", default=None)
@click.option("--release", is_flag=True, help="Release the hold.")
def retention_hold(email: str | None, phone: str | None, release: bool) -> None:
    """Put a customer under legal hold (the sweep passes them by), or release it."""
    _person(email, phone)
    load_settings()
    customer_id = retention_flow.set_legal_hold(not release, email=email, phone=phone)
    if customer_id is None:
        errors.print("no customer matches")
        sys.exit(1)
    console.print(f"customer {customer_id}: legal hold {'released' if release else 'set'}")


# ---------------------------------------------------------------- data-subject requests

@contextlib.contextmanager
def _refused() -> Iterator[None]:
    """A request that is unknown or not in a state for the action: one red line and exit status 1."""
    try:
        yield
    except (LookupError, requests_flow.RequestError) as exc:
        errors.print(f"[red]{exc}[/red]", highlight=False)
        sys.exit(1)


@click.group()
def requests() -> None:
    """Data-subject requests: record, verify the identity, extend, list by deadline, complete."""


@requests.command("add")
@click.option("--type", "kind", type=click.Choice(list(requests_flow.KINDS)), required=True)
@click.option("--email", default=None)
@click.option("--phone", default=None)
@click.option("--channel", type=click.Choice(["cli", "staff"]), default="cli", show_default=True,
              help="staff: received by staff in person, by post or by phone and typed in here.")
@click.option("--received", default=None, help="When it was received (ISO date); default now. The deadline runs from it.")
@click.option("--language", type=click.Choice(["hu", "en"]), default=None)
def requests_add(kind: str, email: str | None, phone: str | None, channel: str, received: str | None,
                 language: str | None) -> None:
    """Record a request; it awaits the identity check."""
    _person(email, phone)
    load_settings()
    try:
        request_id = requests_flow.add(kind, email=email, phone=phone, channel=channel, actor="cli",
                                       received_at=moment_option(received), language=language)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    info = requests_flow.detail(request_id)
    console.print(f"request {request_id} ({kind}): awaiting verification, due {info['due_at'][:10]}")


@requests.command("verify")
@click.argument("request_id", type=int)
@click.option("--by", "verified_by", required=True, help="Who checked the identity.")
@click.option("--method", type=click.Choice(list(requests_flow.METHODS)), required=True)
@click.option("--type", "kind", type=click.Choice(list(requests_flow.KINDS)), default=None,
              help="Name or correct the kind (a mail whose kind could not be told).")
@click.option("--now", "run_now", is_flag=True, help="Do the request's work here (erasure, export) at once.")
def requests_verify(request_id: int, verified_by: str, method: str, kind: str | None, run_now: bool) -> None:
    """Record the identity check; only then can an erasure or export run."""
    load_settings(vendors=run_now)
    with _refused():
        requests_flow.verify(request_id, verified_by, method, kind=kind, actor="cli")
        if run_now:
            with progress.bars():
                state = requests_flow.run(request_id, actor="cli")
        else:
            requests_flow.run_request(request_id)
            state = "verified (queued)"
    console.print(f"request {request_id}: {state}")


@requests.command("extend")
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Why (the person must be told within the first month).")
def requests_extend(request_id: int, reason: str) -> None:
    """Extend the deadline by two months (GDPR Art. 12(3)), once."""
    load_settings()
    with _refused():
        due = requests_flow.extend(request_id, reason, actor="cli")
    console.print(f"request {request_id}: due {due.date().isoformat()}")


@requests.command("complete")
@click.argument("request_id", type=int)
@click.option("--note", default=None, help="What was done (required for rectification, restriction, objection).")
def requests_complete(request_id: int, note: str | None) -> None:
    """Close a verified request whose work is done."""
    load_settings()
    with _refused():
        requests_flow.complete(request_id, note, actor="cli")
    console.print(f"request {request_id}: done")


@requests.command("refuse")
@click.argument("request_id", type=int)
@click.option("--note", required=True, help="Why: the identity could not be checked, or the request is unfounded.")
def requests_refuse(request_id: int, note: str) -> None:
    """Close a request without acting on it."""
    load_settings()
    with _refused():
        requests_flow.refuse(request_id, note, actor="cli")
    console.print(f"request {request_id}: refused")


@requests.command("lift")
@click.argument("request_id", type=int)
@click.option("--note", required=True, help="Why the restriction ends (tell the person first, GDPR Art. 18(3)).")
def requests_lift(request_id: int, note: str) -> None:
    """Lift the restriction or objection a request set; the events held meanwhile run again."""
    load_settings()
    with _refused():
        replayed = requests_flow.lift(request_id, note, actor="cli")
    console.print(f"request {request_id}: restriction lifted; {len(replayed)} held event(s) queued again")


@requests.command("tasks")
@click.argument("request_id", type=int)
def requests_tasks(request_id: int) -> None:
    """The manual tasks at processors without an API: instructions, deadline, confirmation."""
    load_settings()
    with _refused():
        rows = requests_flow.tasks(request_id)
    table = Table("processor", "due", "confirmed", "by", "instructions")
    for task in rows:
        table.add_row(task["processor"], task["due_at"][:10], (task["confirmed_at"] or "")[:16],
                      task["confirmed_by"] or "", task["instructions"])
    console.print(table)
    console.print(f"{sum(1 for t in rows if not t['confirmed_at'])} of {len(rows)} task(s) open")


@requests.command("confirm")
@click.argument("request_id", type=int)
@click.argument("processor")
@click.option("--by", "confirmed_by", required=True, help="Who did it.")
@click.option("--note", default=None, help="What the processor confirmed (a ticket number, say).")
def requests_confirm(request_id: int, processor: str, confirmed_by: str, note: str | None) -> None:
    """Confirm a manual task done; the request completes with the last one when its own work is done."""
    load_settings()
    with _refused():
        state = requests_flow.confirm_task(request_id, processor, confirmed_by, note, actor="cli")
    console.print(f"request {request_id}: {processor} confirmed; {state}")


@requests.command("show")
@click.argument("request_id", type=int)
def requests_show(request_id: int) -> None:
    """A request as JSON (no personal data: the person is a customer id and a hash)."""
    load_settings()
    with _refused():
        click.echo(json.dumps(requests_flow.detail(request_id), indent=2, ensure_ascii=False))


@requests.command("list")
@click.option("--all", "show_all", is_flag=True, help="Done and refused ones too.")
@click.option("--due-within", type=int, default=None, help="Only those due within this many days (overdue included).")
def requests_list(show_all: bool, due_within: int | None) -> None:
    """Requests soonest due first; overdue and nearly due ones marked. Exit 3 when any open one is overdue."""
    loaded = load_settings()
    rows = requests_flow.listing(open_only=not show_all, due_within_days=due_within)
    warn = loaded.config.privacy.warn_days
    table = Table("id", "type", "state", "channel", "customer", "received", "due", "days left", "")
    for row in rows:
        left = row.days_left()
        flag = ""
        if row.state in requests_flow.OPEN:
            flag = "[red]OVERDUE[/red]" if row.overdue else ("[yellow]due soon[/yellow]" if left <= warn else "")
        table.add_row(str(row.id), row.kind, row.state, row.channel, str(row.customer_id),
                      row.received_at.date().isoformat(),
                      row.due_at.date().isoformat() + (" (extended)" if row.extended else ""),
                      str(left) if row.state in requests_flow.OPEN else "", flag)
    console.print(table)
    overdue = sum(1 for row in rows if row.overdue)
    console.print(f"{len(rows)} request(s), {overdue} overdue")
    if overdue:
        sys.exit(3)
