"""The console's operational pages: the overview, the inbox (payload-free) with replay, tickets with their ids in
every system and their history, the audit trail and the configuration check. Like the CLI, the console sits on
top of the flows and runs them (imported where they are used)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select

from core import audit, settings, store
from core.models import Audit, Cursor, Erasure, InboxEvent, Ticket
from core.settings import VENDOR_BASE_URLS, ConfigError, load_config
from flows.closure import reconcile
from flows.complaints import complaint_deadlines
from flows.intake import sla
from flows.privacy import requests as privacy_requests

from .auth import bp, current, needs

INBOX_STATUSES = ("pending", "running", "failed", "dead", "held", "done")
LIMIT = 200


def _args(*names: str) -> dict[str, str]:
    return {name: (request.args.get(name) or "").strip() for name in names}


@bp.get("/")
def overview() -> Any:
    now = datetime.now(timezone.utc)
    breached = [b.ticket_id for b in sla.breaches(now=now)]  # its own session: first
    complaints_due = complaint_deadlines.items(now)  # due from the working day before the deadline, or overdue
    state = reconcile.load_cursor() or {}
    requests_due = privacy_requests.listing(due_within_days=settings.get().config.privacy.warn_days)
    with store.session() as s:
        counts = dict(s.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all())
        open_breaches = list(s.scalars(select(Ticket).where(Ticket.id.in_(breached), Ticket.is_closed.is_(False))
                                       .order_by(Ticket.confirm_due_at).limit(20)))
        open_breach_count = s.scalar(select(func.count()).select_from(Ticket).where(
            Ticket.id.in_(breached), Ticket.is_closed.is_(False))) or 0
        cursor = s.get(Cursor, reconcile.CURSOR)
        last_fix = s.scalar(select(Audit).where(Audit.action == "reconcile.run").order_by(Audit.id.desc()).limit(1))
        open_erasures = s.scalar(select(func.count()).select_from(Erasure).where(Erasure.status != "done")) or 0
        s.expunge_all()
    return render_template("staff/overview.html", counts=counts, statuses=INBOX_STATUSES,
                           open_breaches=open_breaches, open_breach_count=open_breach_count,
                           reconcile_at=cursor.updated_at if cursor else None, reconcile_phase=state.get("phase"),
                           last_fix=last_fix, open_erasures=open_erasures, complaints_due=complaints_due,
                           requests_due=requests_due)


@bp.get("/inbox")
def inbox() -> Any:
    args = _args("status", "source", "kind")
    query = select(InboxEvent).order_by(InboxEvent.id.desc()).limit(LIMIT)
    if args["status"] in INBOX_STATUSES:
        query = query.where(InboxEvent.status == args["status"])
    if args["source"]:
        query = query.where(InboxEvent.source == args["source"])
    if args["kind"]:
        query = query.where(InboxEvent.kind == args["kind"])
    with store.session() as s:
        # The payload column is never loaded: it holds personal data, and nothing here shows it.
        rows = s.execute(query.with_only_columns(
            InboxEvent.id, InboxEvent.source, InboxEvent.kind, InboxEvent.status, InboxEvent.attempts,
            InboxEvent.received_at, InboxEvent.last_error)).all()
        sources = list(s.scalars(select(InboxEvent.source).distinct().order_by(InboxEvent.source)))
    return render_template("staff/inbox.html", rows=rows, args=args, statuses=INBOX_STATUSES, sources=sources,
                           limit=LIMIT)


@bp.get("/inbox/<int:inbox_id>")
def inbox_event(inbox_id: int) -> Any:
    with store.session() as s:
        row = s.execute(select(InboxEvent.id, InboxEvent.source, InboxEvent.kind, InboxEvent.event_key,
                               InboxEvent.status, InboxEvent.attempts, InboxEvent.last_error,
                               InboxEvent.received_at, InboxEvent.updated_at, InboxEvent.processed_at)
                        .where(InboxEvent.id == inbox_id)).first()
        if row is None:
            abort(404)
        made = s.scalar(select(Ticket.id).where(Ticket.source_key == f"inbox:{inbox_id}"))
    return render_template("staff/inbox_event.html", row=row, ticket_id=made,
                           replayable=row.status in ("dead", "failed", "pending"))


@bp.post("/inbox/<int:inbox_id>/replay")
@needs("replay")
def replay(inbox_id: int) -> Any:
    """As `switchboard inbox replay ID`: pending again with a fresh attempt count, and queued for a worker."""
    from flows import dispatch
    from flows import inbox as inbox_flow
    ids = inbox_flow.replay([inbox_id])
    for replayed in ids:
        dispatch.process_inbox(replayed)
    with store.session() as s:
        audit.record(s, current().email, "inbox.replayed", inbox_id=inbox_id, queued=bool(ids))
    flash("replay_queued" if ids else "replay_refused", "ok" if ids else "error")
    return redirect(url_for("staff.inbox_event", inbox_id=inbox_id))


@bp.get("/tickets")
def tickets() -> Any:
    args = _args("state", "channel", "id")
    query = select(Ticket).order_by(Ticket.id.desc()).limit(LIMIT)
    if args["state"] in ("open", "closed"):
        query = query.where(Ticket.is_closed.is_(args["state"] == "closed"))
    if args["channel"]:
        query = query.where(Ticket.channel == args["channel"])
    if args["id"]:  # any system's id: ours, HappyFox's (number or display id), HubSpot's, the one the customer has
        wanted = args["id"]
        ids = [Ticket.happyfox_display_id == wanted, Ticket.hubspot_ticket_id == wanted, Ticket.told_id == wanted]
        if wanted.isdigit():
            ids += [Ticket.id == int(wanted), Ticket.happyfox_id == int(wanted)]
        query = query.where(or_(*ids))
    with store.session() as s:
        rows = list(s.scalars(query))
        s.expunge_all()
    return render_template("staff/tickets.html", rows=rows, args=args, limit=LIMIT,
                           channels=["form", "email", "phone", "post", "fax", "social", "in_person"])


@bp.get("/tickets/<int:ticket_id>")
def ticket(ticket_id: int) -> Any:
    with store.session() as s:
        row = s.get(Ticket, ticket_id)
        if row is None:
            abort(404)
        history = list(s.scalars(select(Audit).where(Audit.ticket_id == ticket_id).order_by(Audit.id)))
        made_by = None
        if row.source_key.startswith("inbox:"):
            made_by = int(row.source_key.split(":", 1)[1])
        s.expunge_all()
    return render_template("staff/ticket.html", row=row, history=history, made_by=made_by)


@bp.get("/audit")
@needs("audit")
def audit_trail() -> Any:
    args = _args("actor", "action", "customer")
    with store.session() as s:
        rows = audit.listing(s, actor=args["actor"] or None, action=args["action"] or None,
                             customer_id=int(args["customer"]) if args["customer"].isdigit() else None,
                             limit=LIMIT)
        s.expunge_all()
    return render_template("staff/audit.html", rows=rows, args=args, limit=LIMIT)


@bp.get("/config")
def config_check() -> Any:
    """As `switchboard config check`, on the YAML file as it is on disk now, and what this process runs with."""
    loaded = settings.get()
    try:
        on_disk, problems = load_config(loaded.env.switchboard_config), []
    except ConfigError as exc:
        on_disk, problems = None, str(exc).splitlines()
    env = loaded.env
    return render_template("staff/config.html", path=env.switchboard_config, config=on_disk, problems=problems,
                           running=loaded.config, endpoints={v: getattr(env, f"{v}_base_url") or VENDOR_BASE_URLS.get(v)
                                                     for v in ("hubspot", "happyfox", "aircall", "gmail")},
                           scripts=sorted(env.script_tokens()), issuer=env.oidc_issuer)
