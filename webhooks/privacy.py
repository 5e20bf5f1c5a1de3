"""`POST /admin/customers/consent-withdrawal` `{"email": ...}` or `{"phone": ...}`: staff record that a person withdrew
consent (policy 002: withdrawal by email to the data-protection address, docs/policy.md#retention). Like every inbound
request it is stored in the inbox and applied by a job (`flows/privacy/retention.py`); the answer is 202 with the inbox id."""
from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, jsonify, request

from core import settings
from core.addresses import InvalidAddress, mailbox

from .admin import staff_only
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
