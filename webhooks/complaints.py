"""`GET /admin/complaints`: the complaint register as a read-only HTML page, for staff, behind
`Authorization: Bearer ADMIN_TOKEN` like every `/admin/` path (a browser sends it through a header extension or
a reverse proxy that adds it; no token in the URL, which would end up in logs and browser history).

Filters (query string): `status` (open|closed), `event_type` (a code), `outcome` (founded|unfounded|none),
`quarter` (received in, e.g. 2026Q3), `escalated` (1). Every view is audited (ISO 27001: access is accountable).
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from typing import Any

from flask import Blueprint, Response, render_template, request
from sqlalchemy import select

from core import audit, settings, store
from core.models import Complaint, Ticket
from core.workdays import BUDAPEST

from .admin import actor, staff_only

bp = Blueprint("complaints_admin", __name__, url_prefix="/admin")
LIMIT = 500


def _quarter_bounds(quarter: str) -> tuple[datetime, datetime] | None:
    """[start, end) of "2026Q3" in UTC from Budapest midnights (as flows/complaints/complaint_report.py; webhooks may not
    import flows)."""
    match = re.match(r"^(\d{4})Q([1-4])$", quarter)
    if not match:
        return None
    year, q = int(match[1]), int(match[2])
    start, end = date(year, 3 * q - 2, 1), date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
    return (datetime.combine(start, time(0), BUDAPEST).astimezone(timezone.utc),
            datetime.combine(end, time(0), BUDAPEST).astimezone(timezone.utc))


@bp.get("/complaints")
@staff_only
def register() -> Any:
    spec = settings.get().config.complaints
    args = {k: (request.args.get(k) or "").strip() for k in ("status", "event_type", "outcome", "quarter",
                                                              "escalated")}
    query = select(Complaint, Ticket.happyfox_display_id).join(Ticket, Ticket.id == Complaint.ticket_id)
    if args["status"] in ("open", "closed"):
        query = query.where(Complaint.status == args["status"])
    if args["event_type"]:
        query = query.where(Complaint.event_type == args["event_type"])
    if args["outcome"] in ("founded", "unfounded"):
        query = query.where(Complaint.outcome == args["outcome"])
    elif args["outcome"] == "none":
        query = query.where(Complaint.outcome.is_(None))
    if args["escalated"] == "1":
        query = query.where(Complaint.escalated_at.is_not(None))
    bounds = _quarter_bounds(args["quarter"]) if args["quarter"] else None
    if bounds:
        query = query.where(Complaint.received_at >= bounds[0], Complaint.received_at < bounds[1])
    with store.session() as s:
        rows = s.execute(query.order_by(Complaint.received_at.desc()).limit(LIMIT)).all()
        s.expunge_all()
        audit.record(s, actor(), "complaints.viewed", count=len(rows),
                     filters={k: v for k, v in args.items() if v})
    page = render_template("complaints/register.html", rows=rows, args=args, spec=spec, limit=LIMIT,
                           local=lambda m: m.astimezone(BUDAPEST).strftime("%Y-%m-%d %H:%M") if m else "",
                           label=lambda code: spec.label(code, "hu") if code else "")
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"  # personal data: no copies in shared caches
    response.headers["X-Robots-Tag"] = "noindex"
    return response
