"""The HubSpot fake: CRM v3 objects (contacts, tickets, calls), contact merge, v4 associations, pipelines and
properties, with HubSpot's Bearer auth, error bodies, rate-limit answer and signed webhook batches
(docs/vendors/hubspot.md).

State (`sandbox.state["hubspot"]`, plain dicts so `/_sandbox/state` shows it): `contacts`, `tickets`, `calls`
(id -> `{"id", "properties", "createdAt", "updatedAt", "archived"}`), `associations` (a list of
`{"from": [type, id], "to": [type, id], "typeId"}`, stored once and answered from both sides), `pipelines`,
`blocklist` (emails GDPR-deleted while unknown).
"""
from __future__ import annotations

import math
import time
import uuid
from typing import Any

from flask import Blueprint, Request, Response, jsonify

from ..state import current
from ..vendor import Vendor
from . import merge, meta, objects, search
from .webhooks import emit

# The category each status carries (docs/vendors/hubspot.md#errors).
CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
              404: "OBJECT_NOT_FOUND", 409: "CONFLICT", 423: "LOCKED", 429: "RATE_LIMITS"}
UNAUTHENTICATED = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                   "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")


def error(status: int, message: str) -> Response:
    correlation = str(uuid.uuid4())
    category = CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")
    response = jsonify(status="error", message=message, correlationId=correlation, category=category)
    response.status_code = status
    response.headers["X-HubSpot-Correlation-Id"] = correlation
    return response


def rate_limited(wait: float) -> Response:
    """HubSpot's 429 for the ten-secondly burst limit (docs/vendors/hubspot.md#rate-limits). HubSpot does not promise
    Retry-After; the fake sends it (whole seconds, or decimals for the sub-second waits tests inject)."""
    response = jsonify(status="error", message="You have reached your ten_secondly_rolling limit.",
                       errorType="RATE_LIMIT", correlationId=str(uuid.uuid4()), policyName="TEN_SECONDLY_ROLLING",
                       groupName="publicapi:private_app-api-calls-ten-secondly:54321:62515")
    response.status_code = 429
    requests, _ = VENDOR.limit
    response.headers.update({
        "Retry-After": str(math.ceil(wait)) if wait >= 1 else f"{max(wait, 0.01):.2f}",
        "X-HubSpot-RateLimit-Max": str(requests), "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Daily": "250000", "X-HubSpot-RateLimit-Daily-Remaining": "249000"})
    return response


def _rate_headers(response: Response) -> Response:
    """HubSpot's window headers on every answer (docs/vendors/hubspot.md#rate-limits): the window's size and what
    is left of it, this call counted, as the sandbox's own count of the window has it."""
    if "X-HubSpot-RateLimit-Remaining" in response.headers:
        return response
    sandbox = current()
    requests, per_seconds = sandbox.limits.get("hubspot", VENDOR.limit)
    with sandbox.lock:
        window = list(sandbox._windows.get("hubspot", ()))
    now = time.monotonic()
    used = sum(1 for t in window if t > now - per_seconds)
    response.headers.update({
        "X-HubSpot-RateLimit-Max": str(requests), "X-HubSpot-RateLimit-Remaining": str(max(0, requests - used)),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(per_seconds * 1000))})
    return response


def authenticate(request: Request, credentials: dict[str, str]) -> Response | None:
    if request.headers.get("Authorization") == f"Bearer {credentials['hubspot_access_token']}":
        return None
    return error(401, UNAUTHENTICATED)


def seed(state: dict[str, Any]) -> None:
    state.update(contacts={}, tickets={}, calls={}, emails={}, associations=[], blocklist=[],
                 pipelines={"tickets": [meta.default_ticket_pipeline()]})


blueprint = Blueprint("sandbox_hubspot", __name__)
objects.register(blueprint, error)
merge.register(blueprint, error)
meta.register(blueprint, error)
search.register(blueprint, error)
blueprint.after_request(_rate_headers)

VENDOR = Vendor(name="hubspot", prefixes=("/crm/v3/", "/crm/v4/"), blueprint=blueprint,
                authenticate=authenticate, error=error, rate_limited=rate_limited, limit=(100, 10.0), seed=seed,
                emit=emit)
