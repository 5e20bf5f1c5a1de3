"""`POST /webhooks/<source>`: verify the sender, parse its events, store each once in the inbox, queue its
processing and answer at once. No SaaS API is called here.

Each source is a module with two functions, listed in SOURCES (Zulip's dispatch-table shape):
`verify(request, env)` raises Rejected; `parse(request, config)` returns the events or raises Invalid.
"""
from __future__ import annotations

import json
import logging
from typing import Protocol

from flask import Blueprint, Request, Response, jsonify, request

from core import ingest, settings
from core.metrics import INBOX_RECEIVED
from core.settings import Config, Env
from flows import routes

from .aircall import source as aircall
from .events import Event, Invalid, Rejected
from .form import source as form
from .happyfox import source as happyfox
from .hubspot import source as hubspot

log = logging.getLogger(__name__)


class Source(Protocol):
    def verify(self, request: Request, env: Env) -> None: ...
    def parse(self, request: Request, config: Config) -> list[Event]: ...


SOURCES: dict[str, Source] = {"form": form, "aircall": aircall, "happyfox": happyfox, "hubspot": hubspot}

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/<name>")
def receive(name: str) -> tuple[Response, int]:
    source = SOURCES.get(name)
    if source is None:
        return jsonify(error=f"unknown source {name!r}"), 404
    loaded = settings.get()
    current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not one per read
    try:
        source.verify(current, loaded.env)
    except Rejected as exc:
        INBOX_RECEIVED.labels(name, "rejected").inc()
        log.warning("rejected %s webhook: %s", name, exc)
        return jsonify(error="unauthorized"), 401
    except Invalid as exc:  # unreadable before it could be authenticated
        INBOX_RECEIVED.labels(name, "invalid").inc()
        return jsonify(error=exc.error, fields=exc.fields), exc.status
    try:
        events = source.parse(current, loaded.config)
    except Invalid as exc:
        INBOX_RECEIVED.labels(name, "invalid").inc()
        return jsonify(error=exc.error, fields=exc.fields), exc.status
    return accept(name, events)


def accept(source: str, events: list[Event]) -> tuple[Response, int]:
    """Store the events durably, queue the new ones, answer 202 (anything new) or 200 (all repeats, or nothing
    routed). The write is a group commit shared with the other requests in flight, and the jobs are queued by
    batch (core/ingest.py). An event no route names (flows/routes.py) is accepted and ignored: not stored, counted."""
    routed = [event for event in events if routes.is_routed(source, event.kind)]
    if len(routed) < len(events):
        INBOX_RECEIVED.labels(source, "ignored").inc(len(events) - len(routed))
    stored = ingest.store_events(source, [(event.key, event.kind, event.payload) for event in routed]) if routed else []
    ids = [inbox_id for inbox_id, _ in stored]
    new = [inbox_id for inbox_id, created in stored if created]
    if new:
        INBOX_RECEIVED.labels(source, "stored").inc(len(new))
    if len(ids) > len(new):
        INBOX_RECEIVED.labels(source, "repeat").inc(len(ids) - len(new))
    body: dict[str, object] = {"id": str(ids[0]) if ids else None, "ids": [str(i) for i in ids]}
    if len(routed) < len(events):
        body["ignored"] = len(events) - len(routed)
    # A plain Response: jsonify's provider lookup and key sorting cost more than the answer is worth here.
    return Response(json.dumps(body), mimetype="application/json"), 202 if new else 200
