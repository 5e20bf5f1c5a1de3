"""Aircall call events: `{resource, event, timestamp, token, data}` whose `token` must equal
AIRCALL_WEBHOOK_TOKEN (docs/vendors/aircall.md#webhooks). One event per call and event name."""
from __future__ import annotations

from werkzeug.wrappers import Request

from core.settings import Config, Env

from ..events import Event, Invalid, Rejected, json_body, require_object, same_secret, vendor_id


def verify(request: Request, env: Env) -> None:
    # The token is inside the body, so the body is parsed first; the parse is bounded (size by the app's
    # MAX_CONTENT_LENGTH, nesting by orjson) and nothing else is done before the token is checked.
    envelope = json_body(request)
    token = envelope.get("token") if isinstance(envelope, dict) else None
    if not same_secret(token if isinstance(token, str) else None, env.secret("aircall_webhook_token")):
        raise Rejected("bad or missing token")


def parse(request: Request, config: Config) -> list[Event]:
    envelope = require_object(json_body(request), "the body")
    event, data = envelope.get("event"), envelope.get("data")
    call_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(event, str) or not (isinstance(call_id, str) and call_id or vendor_id(call_id) is not None):
        raise Invalid("expected {event, data: {id, ...}}", fields={"event": "required", "data.id": "required"})
    payload = {k: v for k, v in envelope.items() if k != "token"}  # the secret is not stored
    return [Event(key=f"{event}:{call_id}", kind=event, payload=payload)]
