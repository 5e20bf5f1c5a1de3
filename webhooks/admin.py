"""`/admin/...`: JSON endpoints for staff tools, behind `Authorization: Bearer ADMIN_TOKEN`."""
from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, jsonify, request
from pydantic import ValidationError
from sqlalchemy import select

from core import settings, store
from core.models import InboxEvent
from core.reports import ManualReport

from .events import Event, same_secret
from .receiver import accept

bp = Blueprint("admin", __name__, url_prefix="/admin")


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
    try:
        report = ManualReport.model_validate(request.get_json(silent=True) or {})
    except ValidationError as exc:
        fields = {".".join(map(str, e["loc"])) or "body": e["msg"] for e in exc.errors()}
        return jsonify(error="invalid report", fields=fields), 400
    if report.category not in settings.get().config.categories:
        return jsonify(error="invalid report", fields={"category": "unknown category"}), 400
    key = report.key or str(uuid.uuid4())
    return accept("manual", [Event(key=key, kind="manual", payload=report.model_dump(exclude={"key"}))])


@bp.get("/inbox")
@staff_only
def inbox() -> Any:
    status = request.args.get("status")
    with store.session() as s:
        query = select(InboxEvent).order_by(InboxEvent.id.desc()).limit(200)
        if status:
            query = query.where(InboxEvent.status == status)
        rows = s.scalars(query).all()
        return jsonify([{"id": r.id, "source": r.source, "kind": r.kind, "status": r.status,
                         "attempts": r.attempts, "last_error": r.last_error,
                         "received_at": r.received_at.isoformat()} for r in rows])
