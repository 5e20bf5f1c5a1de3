"""What every source's receiver shares: the event it yields, its two refusals, and safe body reading."""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

import orjson
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

# What the inbox table holds (core/models.py InboxEvent): a longer key or kind would fail the database write.
MAX_KEY, MAX_KIND = 200, 60
# Vendor ids are 64-bit at most (HappyFox, HubSpot, Aircall): a larger number is no id of theirs, and would
# overflow the database's BIGINT when a flow looks it up.
MAX_ID = 2**63 - 1


@dataclass
class Event:
    key: str                  # the sender's own id for the event: a repeat delivery carries the same key
    kind: str                 # e.g. "form", "call.ended", "ticket", "ticket.propertyChange"
    payload: dict[str, Any]

    def __post_init__(self) -> None:
        # The key and kind come from the sender (verified, yet not trusted to fit our columns).
        if not 0 < len(self.key) <= MAX_KEY or not 0 < len(self.kind) <= MAX_KIND \
                or not (self.key + self.kind).isprintable():
            raise Invalid("event id or type is empty, too long or not printable",
                          fields={"key": f"1 to {MAX_KEY} printable characters",
                                  "kind": f"1 to {MAX_KIND} printable characters"})


class Rejected(Exception):
    """The request is not from who it claims to be (forged, unsigned, stale): 401, nothing stored."""


@dataclass
class Invalid(Exception):
    """The request is authentic but unusable: 400, 413 or 415 with the reason, field by field."""
    error: str
    status: int = 400
    fields: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The JSON answer, as the receiver and the Flask views give it."""
        return {"error": self.error, "fields": self.fields}


def http_error(exc: HTTPException) -> dict[str, Any]:
    """The JSON answer for an error werkzeug raised (a 404, 405, 413, a malformed multipart...): webhook clients
    expect JSON, not an HTML error page, from the receiver and from Flask's routes alike."""
    return {"error": exc.name, "description": exc.description, "fields": {}}


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison; an unset secret on our side accepts nothing. Compared as UTF-8 bytes, since
    hmac.compare_digest refuses a non-ASCII str (a header or query value may hold any character)."""
    return bool(expected) and given is not None and hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode())


def parse_json(raw: bytes) -> Any:
    """Bytes as JSON, or Invalid. orjson refuses what would hurt later instead of recursing or passing it on:
    nesting deeper than 1024 (the stdlib parser recurses until RecursionError), invalid UTF-8 and lone surrogates
    (which no database driver can encode), NaN and infinities. Integers beyond 64 bits come back as floats, so
    they fail every integer id check."""
    if not raw:
        raise Invalid("empty body", fields={"body": "required"})
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Invalid("body is not valid JSON", fields={"body": "not valid JSON (UTF-8, at most 1024 levels deep)"}) \
            from None


def json_body(request: Request) -> Any:
    """The body as JSON, whatever the Content-Type claims (vendors are not always exact), or Invalid."""
    return parse_json(request.get_data(cache=True))


def vendor_id(value: Any) -> int | None:
    """A vendor's numeric id, given as a JSON integer or a string of ASCII digits, within 64 bits; else None.
    (str.isdigit() is true for "²", which int() refuses.)"""
    if isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID:
        return value
    return None


def require_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{what} must be a JSON object")
    return value
