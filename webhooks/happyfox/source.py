"""HappyFox smart-rule webhooks. HappyFox documents no signature, so the URL carries a shared secret
(`?token=HAPPYFOX_WEBHOOK_SECRET`, compared in constant time); the body is the ticket JSON, treated only as a hint: the
flow re-reads the ticket (docs/vendors/happyfox.md#webhooks). The event key is the ticket's id and last-modified time,
so a repeated delivery of one change is stored once and every new change is stored."""
from __future__ import annotations

import hashlib
from typing import Any

from werkzeug.wrappers import Request

from core.settings import Config, Env

from ..events import Event, Invalid, Rejected, json_body, require_object, same_secret, vendor_id


def verify(request: Request, env: Env) -> None:
    if not same_secret(request.args.get("token"), env.secret("happyfox_webhook_secret")):
        raise Rejected("bad or missing token")


def parse(request: Request, config: Config) -> list[Event]:
    body = require_object(json_body(request), "the body")
    ticket = body.get("ticket", body)  # a smart rule may wrap the ticket; both shapes are seen
    ticket_id = vendor_id(ticket.get("id")) if isinstance(ticket, dict) else None
    if ticket_id is None:
        raise Invalid("expected a ticket object with an integer id", fields={"id": "required: a 64-bit integer"})
    version = ticket_version(ticket) or hashlib.sha256(request.get_data(cache=True)).hexdigest()[:16]
    payload = {"ticket_id": ticket_id, "ticket": ticket}
    return [Event(key=f"{ticket_id}:{version}", kind="ticket", payload=payload)]


def ticket_version(ticket: dict[str, Any]) -> str:
    """What tells one change from the next: last_modified has whole seconds only
    (docs/vendors/happyfox.md#base-url-auth-and-formats), so two changes in one second (created, then closed) would
    share it; the newest update id and the status tell them apart, while a repeated delivery of one change still carries
    the same values."""
    stamp = ticket.get("last_modified") or ticket.get("last_updated_at")
    if not stamp:
        return ""
    listed = ticket.get("updates")
    updates = listed if isinstance(listed, list) else []
    newest = max((u["update_id"] for u in updates if isinstance(u, dict) and isinstance(u.get("update_id"), int)),
                 default=0)
    status = ticket.get("status")
    status_id = status.get("id") if isinstance(status, dict) else status
    return f"{stamp}:{newest}:{status_id}"
