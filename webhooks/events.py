"""What every source's receiver shares: the event it yields, its two refusals, and safe body reading."""
from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from flask import Request


@dataclass
class Event:
    key: str                  # the sender's own id for the event: a repeat delivery carries the same key
    kind: str                 # e.g. "form", "call.ended", "ticket", "ticket.propertyChange"
    payload: dict[str, Any]


class Rejected(Exception):
    """The request is not from who it claims to be (forged, unsigned, stale): 401, nothing stored."""


@dataclass
class Invalid(Exception):
    """The request is authentic but unusable: 400, 413 or 415 with the reason, field by field."""
    error: str
    status: int = 400
    fields: dict[str, str] = field(default_factory=dict)


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison; an unset secret on our side accepts nothing."""
    return bool(expected) and given is not None and hmac.compare_digest(given.encode(), expected.encode())


def json_body(request: Request) -> Any:
    """The body as JSON, whatever the Content-Type claims (vendors are not always exact), or Invalid."""
    raw = request.get_data(cache=True)
    if not raw:
        raise Invalid("empty body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("body is not valid JSON") from None


def require_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{what} must be a JSON object")
    return value
