"""`POST /admin/customers/consent-withdrawal` `{"email": ...}` or `{"phone": ...}`: staff record that a person withdrew
consent (policy 002: withdrawal by email to the data-protection address, docs/policy.md#retention). Like every inbound
request it is stored in the inbox and applied by a job (`flows/privacy/retention.py`); the answer is 202 with the inbox id."""
from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, jsonify, request

from core import settings
from core.addresses import InvalidAddress, mailbox
from flows.privacy import requests as requests_flow

from .admin import MAX_ID, actor, staff_only
from .events import Event, json_body
from .receiver import accept

bp = Blueprint("privacy", __name__, url_prefix="/admin")


@bp.post("/customers/consent-withdrawal")
@staff_only
def consent_withdrawal() -> Any:
    body = json_body(request)
    if not isinstance(body, dict):
        return jsonify(error="invalid request", fields={"body": "expected a JSON object"}), 400
    person = {k: body[k].strip() for k in ("email", "phone") if isinstance(body.get(k), str) and body[k].strip()}
    if not person:
        return jsonify(error="invalid request", fields={"email": "give an email or a phone"}), 400
    errors = settings.get().config.input.too_long(person)
    if "email" in person:
        try:
            person["email"] = mailbox(person["email"])
        except InvalidAddress as exc:
            errors["email"] = str(exc)
    if errors:
        return jsonify(error="invalid request", fields=errors), 400
    return accept("admin", [Event(key=str(uuid.uuid4()), kind="consent.withdrawn", payload=person)])


# ---------------------------------------------------------------- data-subject requests

def _invalid(**fields: str) -> Any:
    return jsonify(error="invalid request", fields=fields), 400


def _object() -> dict[str, Any] | None:
    body = json_body(request)
    return body if isinstance(body, dict) else None


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _not_found() -> Any:
    return jsonify(error="not found", fields={"id": "no such request"}), 404


def _refused(exc: Exception) -> Any:
    return jsonify(error="not possible", description=str(exc)), 409


@bp.post("/requests")
@staff_only
def add_request() -> Any:
    """`{"type", "email"|"phone", "language"?}`: a request received by staff, recorded awaiting verification."""
    body = _object()
    if body is None:
        return _invalid(body="expected a JSON object")
    kind, language = body.get("type"), body.get("language")
    person = {k: v for k in ("email", "phone") if (v := _text(body, k))}
    errors: dict[str, str] = {}
    if kind not in requests_flow.KINDS:
        errors["type"] = f"one of {', '.join(requests_flow.KINDS)}"
    if language is not None and language not in ("hu", "en"):
        errors["language"] = "hu or en"
    if not person:
        errors["email"] = "give an email or a phone"
    errors.update(settings.get().config.input.too_long(person))
    if "email" in person and "email" not in errors:
        try:
            person["email"] = mailbox(person["email"])
        except InvalidAddress as exc:
            errors["email"] = str(exc)
    if errors:
        return _invalid(**errors)
    try:
        request_id = requests_flow.add(str(kind), email=person.get("email"), phone=person.get("phone"),
                                       channel="admin", actor=actor(), language=language)
    except ValueError as exc:  # a phone that is not a number
        return _invalid(phone=str(exc))
    return jsonify(requests_flow.detail(request_id)), 201


@bp.get("/requests")
@staff_only
def list_requests() -> Any:
    show_all = request.args.get("all") in ("1", "true")
    return jsonify([{"id": r.id, "type": r.kind, "state": r.state, "channel": r.channel,
                     "customer_id": r.customer_id, "received_at": r.received_at.isoformat(),
                     "due_at": r.due_at.isoformat(), "extended": r.extended, "overdue": r.overdue}
                    for r in requests_flow.listing(open_only=not show_all)])


@bp.get("/requests/<int:request_id>")
@staff_only
def get_request(request_id: int) -> Any:
    if request_id > MAX_ID:
        return _not_found()
    try:
        return jsonify(requests_flow.detail(request_id))
    except LookupError:
        return _not_found()


def _act(request_id: int, action: str) -> Any:
    if request_id > MAX_ID:
        return _not_found()
    body = _object()
    if body is None:
        return _invalid(body="expected a JSON object")
    try:
        if action == "verify":
            method, kind, by = body.get("method"), body.get("type"), _text(body, "verified_by")
            errors = {}
            if method not in requests_flow.METHODS:
                errors["method"] = f"one of {', '.join(requests_flow.METHODS)}"
            if kind is not None and kind not in requests_flow.KINDS:
                errors["type"] = f"one of {', '.join(requests_flow.KINDS)}"
            if by is None:
                errors["verified_by"] = "who checked the identity"
            if errors:
                return _invalid(**errors)
            requests_flow.verify(request_id, str(by), str(method), kind=kind, actor=actor())
            requests_flow.run_request(request_id)
            return jsonify(requests_flow.detail(request_id)), 202
        text = _text(body, "reason" if action == "extend" else "note")
        if action == "extend":
            if text is None:
                return _invalid(reason="why the deadline is extended")
            requests_flow.extend(request_id, text, actor=actor())
        elif action == "refuse":
            if text is None:
                return _invalid(note="why the request is refused")
            requests_flow.refuse(request_id, text, actor=actor())
        else:
            requests_flow.complete(request_id, text, actor=actor())
    except requests_flow.RequestError as exc:
        return _refused(exc)
    except LookupError:
        return _not_found()
    return jsonify(requests_flow.detail(request_id))


@bp.post("/requests/<int:request_id>/verify")
@staff_only
def verify_request(request_id: int) -> Any:
    """`{"verified_by", "method", "type"?}`: the identity check; the request's work is queued."""
    return _act(request_id, "verify")


@bp.post("/requests/<int:request_id>/extend")
@staff_only
def extend_request(request_id: int) -> Any:
    """`{"reason"}`: two more months, once."""
    return _act(request_id, "extend")


@bp.post("/requests/<int:request_id>/complete")
@staff_only
def complete_request(request_id: int) -> Any:
    """`{"note"?}`: close a verified request whose work is done."""
    return _act(request_id, "complete")


@bp.post("/requests/<int:request_id>/refuse")
@staff_only
def refuse_request(request_id: int) -> Any:
    """`{"note"}`: close it without acting (identity not confirmed, unfounded)."""
    return _act(request_id, "refuse")
