"""Event tests in Zulip's manner: `deliver` signs a payload the way its sender does, posts it through the service's
real route (`POST /webhooks/<source>`, verification and parsing included), runs the inbox job of every event the
receiver stored, and returns what happened. Receiver and flow tests use it, so that a flow is tested on what the
receiver really stores, not on a hand-made row.

    result = deliver("aircall", fixture("aircall", "call.ended__missed"))
    assert result.status == 202 and result.outcome == "done"

A test that needs a row the receiver would refuse (a malformed or erased payload, an old row) stores it with
`flowkit.put`, and says why.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from core import ingest, jobs
from core import settings as settings_module
from flows import dispatch
from sandbox.hubspot.webhooks import signature_headers
from webhooks.app import create_app

ROOT = Path(__file__).resolve().parents[2]
HOST = "http://localhost"  # the test client's request.url, which HubSpot's signature covers


@dataclass(frozen=True)
class Delivered:
    status: int                        # the receiver's answer: 202 stored, 200 a repeat or ignored, 4xx refused
    answer: dict[str, Any]
    inbox_ids: list[int] = field(default_factory=list)  # the rows the receiver named, new or repeated
    outcomes: list[str] = field(default_factory=list)   # each row's job status, when run

    @property
    def inbox_id(self) -> int:
        assert len(self.inbox_ids) == 1, f"expected one stored event, got {self.inbox_ids} ({self.answer})"
        return self.inbox_ids[0]

    @property
    def outcome(self) -> str:
        assert len(self.outcomes) == 1, f"expected one job, got {self.outcomes} ({self.status} {self.answer})"
        return self.outcomes[0]


def fixture(source: str, name: str) -> Any:
    """A vendor fixture from webhooks/<source>/fixtures/ (the documented shapes), as the vendor sends it."""
    return json.loads((ROOT / "webhooks" / source / "fixtures" / f"{name}.json").read_text())


def signed(source: str, body: Any, msg_id: str | None = None) -> tuple[str, bytes, dict[str, str]]:
    """(path, raw body, headers) of a delivery of `body` signed as `source`'s sender signs it, with the current
    settings' secrets (docs/vendors/*.md#webhooks)."""
    env = settings_module.get().env
    path = f"/webhooks/{source}"
    headers = {"Content-Type": "application/json"}
    if source == "aircall":  # the token rides in the body
        body = {**body, "token": env.secret("aircall_webhook_token")}
    elif source == "happyfox":  # the smart rule's URL carries the secret
        path += f"?token={env.secret('happyfox_webhook_secret')}"
    raw = json.dumps(body).encode()
    if source == "form":
        headers.update(standard_webhook_headers(env.secret("form_webhook_secret") or "", raw, msg_id))
    elif source == "hubspot":  # v3 over method, URL, body and time
        headers.update(signature_headers(env.secret("hubspot_client_secret"), "POST", HOST + path, raw, None, ("v3",)))
    return path, raw, headers


def standard_webhook_headers(secret: str, raw: bytes, msg_id: str | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery of `raw`, as the website form signs it (a new webhook-id
    unless `msg_id`: a retry keeps its id)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = datetime.fromtimestamp(int(time.time()), timezone.utc)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, raw.decode())}


_apps: dict[int, tuple[Any, Any]] = {}


def _client() -> Any:
    """The service's app on the current settings, built once per settings object."""
    loaded = settings_module.get()
    cached = _apps.get(id(loaded))
    if cached is None or cached[0] is not loaded:
        cached = (loaded, create_app(loaded).test_client())
        _apps.clear()
        _apps[id(loaded)] = cached
    return cached[1]


def deliver(source: str, body: Any, *, run: bool = True, msg_id: str | None = None) -> Delivered:
    """Post `body` to the receiver of `source`, signed; then run each stored event's job unless `run` is false."""
    path, raw, headers = signed(source, body, msg_id)
    # The receiver only queues the job, and the test runs it: under huey's immediate mode (some tests turn it on
    # for the jobs a flow queues) the job would otherwise run inside the request.
    immediate, jobs.huey.immediate = jobs.huey.immediate, False
    try:
        response = _client().post(path, data=raw, headers=headers)
        ingest.writer().queued()  # the receiver's job is in the queue, as a worker would find it, before we return
    finally:
        jobs.huey.immediate = immediate
    answer = response.get_json(silent=True) or {}
    ids = [int(i) for i in answer.get("ids") or []]
    outcomes = [dispatch.process_inbox.call_local(i) for i in ids] if run and response.status_code < 300 else []
    return Delivered(response.status_code, answer, ids, outcomes)


def form_body(stored: dict[str, Any]) -> dict[str, Any]:
    """A form submission as the website posts it, from our field names (`flowkit.website_form`'s shape): each
    named by the form's YAML mapping (config `forms.<name>.fields`); attachments go as multipart, so none here."""
    assert not stored.get("attachments"), "attachments are posted as multipart: use test_webhook_form's helpers"
    name = stored.get("form") or "website"
    mapping = settings_module.get().config.forms[name].fields
    return {"form": name, "fields": {mapping.get(ours, ours): value for ours, value in stored["fields"].items()}}
