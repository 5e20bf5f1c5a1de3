"""`POST /webhooks/<source>`: verify the sender, parse its events, store each once in the inbox, queue its
processing and answer at once. No SaaS API is called here.

Each source is a module with two functions, listed in SOURCES (Zulip's dispatch-table shape):
`verify(request, env)` raises Rejected; `parse(request, config)` returns the events or raises Invalid.

The receiver is a WSGI layer in front of the Flask app rather than one of its views: every webhook is the hot path
(it must be verified and committed before its answer), and Flask's request and app contexts, URL matching and
response finalising cost as much CPU as the receiver's own work while giving it nothing (no session, no template,
no blueprint hook). What it needs is werkzeug's request, which Flask's is built on, and a JSON answer; everything
else goes on to Flask.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, Protocol

import orjson
from prometheus_client import Counter
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Request

from core import ingest, settings
from core.metrics import INBOX_RECEIVED
from core.settings import Config, Env
from flows import routes

from . import health
from .aircall import source as aircall
from .events import Event, Invalid, Rejected, http_error
from .form import source as form
from .happyfox import source as happyfox
from .hubspot import source as hubspot

log = logging.getLogger(__name__)

PREFIX = "/webhooks/"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Answer = tuple[int, dict[str, Any], list[tuple[str, str]]]  # status, JSON body, extra headers


class Source(Protocol):
    def verify(self, request: Request, env: Env) -> None: ...
    def parse(self, request: Request, config: Config) -> list[Event]: ...


SOURCES: dict[str, Source] = {"form": form, "aircall": aircall, "happyfox": happyfox, "hubspot": hubspot}
# Sources whose signature covers the URL they posted to, which behind a PaaS router is the public https one.
SIGN_THE_URL = frozenset({"hubspot"})
_counters: dict[tuple[str, str], Counter] = {}


def count(source: str, outcome: str, amount: int = 1) -> None:
    """INBOX_RECEIVED for a source and outcome; the labelled child kept, since looking it up costs a lock."""
    counter = _counters.get((source, outcome))
    if counter is None:
        counter = _counters[(source, outcome)] = INBOX_RECEIVED.labels(source, outcome)
    counter.inc(amount)


def behind_proxy(app: WSGIApp) -> WSGIApp:
    """The request as the client made it behind a PaaS router: one proxy's X-Forwarded-Proto and -Host trusted."""
    return ProxyFix(app, x_proto=1, x_host=1)


class Receiver:
    """The WSGI app Flask's app is wrapped in (webhooks/app.py): `/webhooks/<name>` here, any other path to Flask.
    The proxy's headers are read only where the public URL matters (Flask's pages and redirects, a signature over
    the URL): reading them cost every other webhook as much as its signature check."""

    def __init__(self, app: WSGIApp, max_content_length: int) -> None:
        self.app = behind_proxy(app)
        self.max_content_length = max_content_length  # attachments plus a margin, as the app's MAX_CONTENT_LENGTH
        self.respond_behind_proxy = behind_proxy(self.respond)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX) or "/" in path[len(PREFIX):]:
            return self.app(environ, start_response)
        if path[len(PREFIX):] in SIGN_THE_URL:
            return self.respond_behind_proxy(environ, start_response)
        return self.respond(environ, start_response)

    def respond(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, body, headers = self.answer(environ["PATH_INFO"][len(PREFIX):], environ)
        data = orjson.dumps(body)
        start_response(f"{status} {HTTPStatus(status).phrase}", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers])
        return [data]

    def answer(self, name: str, environ: dict[str, Any]) -> Answer:
        source = SOURCES.get(name)
        if source is None:
            return 404, {"error": f"unknown source {name!r}", "fields": {}}, []
        if environ["REQUEST_METHOD"] != "POST":
            return 405, {"error": "Method Not Allowed", "fields": {}}, [("Allow", "POST")]
        request = Request(environ)
        request.max_content_length = self.max_content_length
        try:
            return receive(name, source, request)
        except HTTPException as exc:  # werkzeug refused the body itself (a malformed multipart, say): a 4xx
            return exc.code or 400, http_error(exc), []
        except Exception as exc:
            dependency = health.dependency_of(exc)
            if dependency is not None:
                body, headers = health.outage(dependency, exc)
                return 503, body, list(headers.items())
            log.exception("%s webhook failed", name)  # a bug: the sender retries, the traceback is ours to read
            return 500, {"error": "Internal Server Error", "fields": {}}, []


def receive(name: str, source: Source, request: Request) -> Answer:
    loaded = settings.get()
    try:
        source.verify(request, loaded.env)
    except Rejected as exc:
        count(name, "rejected")
        log.warning("rejected %s webhook: %s", name, exc)
        return 401, {"error": "unauthorized"}, []
    except Invalid as exc:  # unreadable before it could be authenticated
        count(name, "invalid")
        return exc.status, exc.body(), []
    try:
        events = source.parse(request, loaded.config)
    except Invalid as exc:
        count(name, "invalid")
        return exc.status, exc.body(), []
    body, status = accept(name, events)
    return status, body, []


def accept(source: str, events: list[Event]) -> tuple[dict[str, Any], int]:
    """Store the events durably, queue the new ones, answer 202 (anything new) or 200 (all repeats, or nothing
    routed), as a JSON body and status that a Flask view may return too (the admin's intake). The write is a group
    commit shared with the other requests in flight, and the jobs are queued by batch (core/ingest.py). An event no
    route names (flows/routes.py) is accepted and ignored: not stored, counted."""
    routed = [event for event in events if routes.is_routed(source, event.kind)]
    if len(routed) < len(events):
        count(source, "ignored", len(events) - len(routed))
    stored = ingest.store_events(source, [(event.key, event.kind, event.payload) for event in routed]) if routed else []
    ids = [inbox_id for inbox_id, _ in stored]
    new = [inbox_id for inbox_id, created in stored if created]
    if new:
        count(source, "stored", len(new))
    if len(ids) > len(new):
        count(source, "repeat", len(ids) - len(new))
    body: dict[str, Any] = {"id": str(ids[0]) if ids else None, "ids": [str(i) for i in ids]}
    if len(routed) < len(events):
        body["ignored"] = len(events) - len(routed)
    return body, 202 if new else 200
