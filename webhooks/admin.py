"""`/admin/...`: JSON endpoints for staff tools, behind `Authorization: Bearer ADMIN_TOKEN`."""
from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, jsonify, request
from pydantic import ValidationError
from sqlalchemy import select

from core import audit, settings, store
from core.models import InboxEvent
from core.reports import ManualReport, attachment_problems

from .events import Event, Invalid, json_body, same_secret
from .receiver import accept

bp = Blueprint("admin", __name__, url_prefix="/admin")
STATUSES = ("pending", "running", "done", "failed", "dead", "held")
MAX_ID = 2**63 - 1


def script_named(token: str) -> str | None:
    """The name of the script whose bearer token this is (ADMIN_TOKENS, or "admin" for ADMIN_TOKEN), or None. Every
    name is compared, so the time taken does not tell which one matched."""
    matches = [name for name, expected in settings.get().env.script_tokens().items() if same_secret(token, expected)]
    return matches[0] if matches else None


def actor() -> str:
    """Who the audit names for this request: `script:<name>` of the token that passed `staff_only`."""
    return f"script:{g.script}" if g.get("script") else "admin"


def staff_only(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        name = script_named(token) if scheme.lower() == "bearer" else None
        if name is None:
            return jsonify(error="unauthorized"), 401
        g.script = name
        return view(*args, **kwargs)
    return guarded


@bp.post("/tickets")
@staff_only
def create_ticket() -> Any:
    """A manual report: the same intake as the form, for post, fax, social media and in-person reports."""
    body = json_body(request)  # Invalid (400) for anything that is not JSON, however deep
    if not isinstance(body, dict):
        raise Invalid("invalid report", fields={"body": "expected a JSON object"})
    try:
        report = ManualReport.model_validate(body)
    except ValidationError as exc:
        fields = {".".join(map(str, e["loc"])) or "body": e["msg"] for e in exc.errors(include_input=False)}
        return jsonify(error="invalid report", fields=fields), 400
    config = settings.get().config
    if report.category not in config.categories:
        return jsonify(error="invalid report", fields={"category": "unknown category"}), 400
    problems = {**report.too_long(config.input), **attachment_problems(report, config)}
    if problems:
        return jsonify(error="invalid report", fields=problems), 400
    key = report.key or str(uuid.uuid4())
    return accept("manual", [Event(key=key, kind="manual",
                                   payload=report.model_dump(mode="json", exclude={"key"}))])


@bp.get("/inbox")
@staff_only
def inbox() -> Any:
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        return jsonify(error="invalid request", fields={"status": f"one of {', '.join(STATUSES)}"}), 400
    with store.session() as s:
        query = select(InboxEvent).order_by(InboxEvent.id.desc()).limit(200)
        if status:
            query = query.where(InboxEvent.status == status)
        rows = s.scalars(query).all()
        return jsonify([{"id": r.id, "source": r.source, "kind": r.kind, "status": r.status,
                         "attempts": r.attempts, "last_error": r.last_error,
                         "received_at": r.received_at.isoformat()} for r in rows])


@bp.post("/inbox/<int:inbox_id>/replay")
@staff_only
def replay(inbox_id: int) -> Any:
    """As `switchboard inbox replay ID` and the staff console's button: a dead, failed or pending row made pending
    again with a fresh attempt count and queued for a worker. 409 for a row that is running or done (a second
    replay of a processed event does nothing), 404 for an unknown id."""
    from flows import dispatch
    from flows import inbox as inbox_flow
    if inbox_id > MAX_ID:  # larger than any BIGINT id: the database would refuse even to look
        return jsonify(error="not found", fields={"id": "no such inbox event"}), 404
    with store.session() as s:
        status = s.scalar(select(InboxEvent.status).where(InboxEvent.id == inbox_id))
    if status is None:
        return jsonify(error="not found", fields={"id": "no such inbox event"}), 404
    ids = inbox_flow.replay([inbox_id])
    for replayed in ids:
        dispatch.process_inbox(replayed)
    with store.session() as s:
        audit.record(s, actor(), "inbox.replayed", inbox_id=inbox_id, queued=bool(ids))
    if not ids:
        return jsonify(error="not replayable", fields={"status": f"{status}: only dead, failed or pending events"}), 409
    return jsonify(id=inbox_id, status="pending", queued=True), 202
