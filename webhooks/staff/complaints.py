"""The console's complaint pages: the register (policy 004) with its twelve staff-filled fields, edited by the
`complaints` role as a staff edit in HappyFox would be (flows/complaints/complaint_sync.py `staff_edit`: the register, then
HappyFox and HubSpot, then the officer's steps); the quarterly report as a download (flows/complaints/complaint_report.py,
as `switchboard report complaints`); and the legal holds (flows/complaints/complaint_hold.py, and the holds set by
`switchboard retention hold`). Every view of a complaint's identification data and every change is audited under
the staff member's address, with ids and field names only."""
from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import or_, select

from core import audit, settings, store
from core.models import Audit, Complaint, Customer, Ticket
from core.workdays import BUDAPEST
from flows.complaints import complaint_deadlines, complaint_fields, complaint_hold, complaint_report, complaint_sync

from .auth import bp, current, needs
from .i18n import language

LIMIT = 200
REPORT_FORMATS = {"html": "text/html", "pdf": "application/pdf", "csv": "text/csv"}
# The register's fields staff fill, in the order of flows/complaint_fields.FIELDS, with the input each takes.
CHOICES = {"outcome": ("founded", "unfounded"), "referral": ("damages", "authority", "labour", "criminal")}
LONG_TEXT = ("measure", "reasons", "proposal")


def _field_names() -> tuple[str, ...]:
    return complaint_fields.FIELDS


def _form_values(c: Complaint) -> dict[str, str]:
    """Each field as the form shows it: what staff would type in HappyFox (dates as the Budapest day)."""
    return {name: complaint_fields.render(name, getattr(c, name)) for name in complaint_fields.FIELDS}


def _quarters(now: datetime) -> list[str]:
    """The current quarter and the seven before it, newest first."""
    local = now.astimezone(BUDAPEST)
    year, q = local.year, (local.month - 1) // 3 + 1
    out = []
    for _ in range(8):
        out.append(f"{year}Q{q}")
        year, q = (year - 1, 4) if q == 1 else (year, q - 1)
    return out


@bp.get("/complaints")
def complaints() -> Any:
    """The register, newest first; no identification data on the list."""
    args = {k: (request.args.get(k) or "").strip() for k in ("status", "outcome", "event_type")}
    query = (select(Complaint, Ticket.happyfox_display_id).join(Ticket, Ticket.id == Complaint.ticket_id)
             .order_by(Complaint.received_at.desc(), Complaint.id.desc()).limit(LIMIT))
    if args["status"] in ("open", "closed"):
        query = query.where(Complaint.status == args["status"])
    if args["outcome"] in ("founded", "unfounded"):
        query = query.where(Complaint.outcome == args["outcome"])
    elif args["outcome"] == "none":
        query = query.where(Complaint.outcome.is_(None))
    if args["event_type"]:
        query = query.where(Complaint.event_type == args["event_type"])
    with store.session() as s:
        rows = s.execute(query).all()
        audit.record(s, current().email, "complaints.viewed", count=len(rows),
                     filters={k: v for k, v in args.items() if v})
        s.flush()
        s.expunge_all()
    now = datetime.now(timezone.utc)
    return render_template("staff/complaints.html", rows=rows, args=args, limit=LIMIT,
                           event_types=settings.get().config.complaints.event_types, quarters=_quarters(now),
                           last_quarter=complaint_report.previous_quarter(now), formats=REPORT_FORMATS)


def _complaint_page(complaint_id: int, values: dict[str, str] | None = None, problems: list[str] | None = None,
                    status: int = 200) -> Any:
    """The complaint's page; `values` and `problems`: a refused form shown again as it was typed."""
    shows_identity = current().may("complaint_identity")
    with store.session() as s:
        c = s.get(Complaint, complaint_id)
        if c is None:
            abort(404)
        ticket = s.get(Ticket, c.ticket_id)
        history = list(s.scalars(select(Audit).where(Audit.ticket_id == c.ticket_id,
                                                     Audit.action != "complaint.viewed")
                                 .order_by(Audit.id.desc()).limit(LIMIT)))
        # Identification data is personal data: its view is accountable (the list's is not: it has none).
        audit.record(s, current().email, "complaint.viewed", complaint_id=c.id, ticket_id=c.ticket_id,
                     customer_id=c.customer_id if shows_identity else None, identification=shows_identity)
        s.flush()
        s.expunge_all()
    due = [item for item in complaint_deadlines.items(include_later=True) if item.complaint_id == complaint_id]
    spec = settings.get().config.complaints
    return render_template("staff/complaint.html", c=c, ticket=ticket, history=history, due=due,
                           values=values or _form_values(c), original=_form_values(c), problems=problems or [],
                           shows_identity=shows_identity, event_types=spec.event_types, choices=CHOICES,
                           long_text=LONG_TEXT, names=_field_names(), hubspot=spec.hubspot_properties,
                           happyfox=spec.happyfox_fields,
                           event_label=lambda code: spec.label(code, language()) if code else ""), status


@bp.get("/complaints/<int:complaint_id>")
def complaint(complaint_id: int) -> Any:
    return _complaint_page(complaint_id)


@bp.post("/complaints/<int:complaint_id>")
@needs("complaint_edit")
def complaint_edit(complaint_id: int) -> Any:
    """Only the fields this form changed (typed value differs from what the form was shown with) are applied, so
    a stale form does not undo another person's edit and a second submit of the same form writes nothing."""
    spec = settings.get().config.complaints
    with store.session() as s:
        if s.get(Complaint, complaint_id) is None:
            abort(404)
    typed = {name: (request.form.get(name) or "").strip() for name in complaint_fields.FIELDS}
    shown = {name: (request.form.get(f"was_{name}") or "").strip() for name in complaint_fields.FIELDS}
    wanted = {name: value for name, value in typed.items() if name in request.form and value != shown[name]}
    problems = []
    for name, value in wanted.items():
        try:
            complaint_fields.parse(name, value, spec)
        except complaint_fields.BadValue:
            problems.append(name)
    if problems:  # nothing is written when any field cannot be read; the form comes back as typed
        with store.session() as s:
            audit.record(s, current().email, "complaint.edit_refused", complaint_id=complaint_id,
                         fields=problems)
        return _complaint_page(complaint_id, values=typed, problems=problems, status=400)
    edit = complaint_sync.staff_edit(complaint_id, wanted, current().email) if wanted else None
    if edit is None or not edit.changed:
        flash("complaint_unchanged", "ok")
    elif edit.pushed:
        flash("complaint_saved", "ok")
    else:
        flash("complaint_saved_push_queued", "error")
    if edit is not None and not edit.followed_up:
        flash("complaint_follow_up_queued", "error")
    return redirect(url_for("staff.complaint", complaint_id=complaint_id))


@bp.post("/complaints/report")
@needs("complaint_report")
def complaint_report_download() -> Any:
    """As `switchboard report complaints --quarter Q`: the quarter's HTML, PDF or CSV, in the page's language.
    A POST (with the CSRF token) because it is an audited export; the server keeps no copy."""
    quarter = (request.form.get("quarter") or "").strip()
    kind = request.form.get("format") or "pdf"
    if kind not in REPORT_FORMATS or not complaint_report.QUARTER.match(quarter):
        abort(400, "choose a quarter (YYYYQn) and one of html, pdf, csv")
    with tempfile.TemporaryDirectory(prefix="switchboard-report-") as out:
        paths = complaint_report.write(quarter, Path(out), language())
        body = paths[kind].read_bytes()
    with store.session() as s:
        audit.record(s, current().email, "complaints.report_downloaded", quarter=quarter, format=kind)
    response = Response(body, mimetype=REPORT_FORMATS[kind])
    response.headers["Content-Disposition"] = f'attachment; filename="complaints-{quarter}.{kind}"'
    return response


@bp.get("/holds")
@needs("holds")
def holds() -> Any:
    """Who is held, until when and why: every customer with an open complaint or a closed one still kept
    (flows/complaints/complaint_hold.py), and every hold set by hand (`switchboard retention hold`). Ids only."""
    today = datetime.now(timezone.utc).astimezone(BUDAPEST).date()
    rows = []
    with store.session() as s:
        by_complaint = {cid for cid in s.scalars(select(Complaint.customer_id).where(
            or_(Complaint.status != "closed", Complaint.keep_until >= today))) if cid is not None}
        by_hand = set(s.scalars(select(Customer.id).where(Customer.legal_hold.is_(True))))
        for customer_id in sorted(by_complaint | by_hand, reverse=True)[:LIMIT]:
            hold = complaint_hold.hold_of(s, [customer_id], today)
            set_by = None
            if customer_id in by_hand:
                set_by = s.scalar(select(Audit).where(Audit.customer_id == customer_id,
                                                      Audit.action == "legal_hold.set")
                                  .order_by(Audit.id.desc()).limit(1))
            rows.append({"customer_id": customer_id, "hold": hold, "by_hand": customer_id in by_hand,
                         "set_by": set_by})
        audit.record(s, current().email, "holds.viewed", count=len(rows))
        s.flush()
        s.expunge_all()
    return render_template("staff/holds.html", rows=rows, limit=LIMIT)
