"""What the flow tests share: storing an inbox event as the receiver does, running the inbox job synchronously
(or several at once), signing a form delivery, shortening the connectors' back-off, and reading the sandbox's
objects."""
from __future__ import annotations

import base64
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tenacity import wait_fixed

from core import jobs, store
from core.models import Audit, Customer, Identity, InboxEvent, Ticket
from flows import dispatch, vendors

from .delivery import deliver, form_body, standard_webhook_headers

ROOT = Path(__file__).resolve().parents[2]


def fast_vendors(attempts: int = 2) -> vendors.Vendors:
    """The process's connectors with a tiny back-off, so that a fault test takes milliseconds, not seconds."""
    current = vendors.get()
    for name in ("hubspot", "happyfox", "aircall", "mail"):
        policy = getattr(current, name).policy
        policy.backoff = wait_fixed(0.01)
        policy.attempts = attempts
        policy.max_inline_wait = 0.5
    return current


@pytest.fixture
def queue(settings: Any, sandbox: Any) -> Any:
    """The process's huey, emptied, so that the jobs a test queues (a scheduled retry, say) can be counted: other
    tests' receivers queued jobs for their own databases. Import it into a test module to use it."""
    fast_vendors()
    jobs.huey.flush()
    yield jobs.huey
    jobs.huey.flush()


def put(source: str, kind: str, payload: dict[str, Any], key: str | None = None) -> int:
    """A row stored directly, as the receiver stores it: only for what the receiver would not store (a malformed
    or erased payload, a row from an older version, a manual entry). Vendor events go through `delivery.deliver`."""
    with store.session() as s:
        row, _ = store.put_inbox(s, source, key or str(uuid.uuid4()), kind, payload)
        return row.id


def website_form(email: str = "kata.kovacs@example.com", **fields: str) -> dict[str, Any]:
    ours = {"last_name": "Kovács", "first_name": "Kata", "email": email, "purpose": "hibabejelentes",
            "product": "Crossec Norma", "summary": "A belépés hibát ad", "details": "Bejelentkezéskor 500-as hiba."}
    ours.update(fields)
    return {"form": "website", "fields": ours, "attachments": []}


def put_form(email: str = "kata.kovacs@example.com", **fields: str) -> int:
    """A website form submission, posted signed through the receiver as the website sends it; its inbox id.
    The shipped website form asks no phone (policy 001); a submission with one is stored as a site whose YAML maps
    a phone field would have it stored, without the receiver."""
    if "phone" in fields:
        return put("form", "form", website_form(email, **fields))
    result = deliver("form", form_body(website_form(email, **fields)), run=False)
    assert result.status == 202, result.answer
    return result.inbox_id


def run(inbox_id: int) -> str:
    return dispatch.process_inbox.call_local(inbox_id)


def race(*inbox_ids: int) -> dict[int, Any]:
    """Run the inbox jobs at the same moment, one thread each, released together by a barrier; each one's
    status, or the exception it raised."""
    barrier = threading.Barrier(len(inbox_ids))
    outcomes: dict[int, Any] = {}

    def work(inbox_id: int) -> None:
        barrier.wait(timeout=10)
        try:
            outcomes[inbox_id] = run(inbox_id)
        except Exception as exc:  # noqa: BLE001 - the test reads it
            outcomes[inbox_id] = exc

    threads = [threading.Thread(target=work, args=(inbox_id,)) for inbox_id in inbox_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == len(inbox_ids), "a racing job did not finish"
    return outcomes


def row(inbox_id: int) -> InboxEvent:
    with store.session() as s:
        found = s.get(InboxEvent, inbox_id)
        s.expunge_all()
    assert found is not None
    return found


def crash_once_recording(monkeypatch: Any, key_prefix: str) -> None:
    """The record of the first write whose key starts with `key_prefix` fails once with RuntimeError: the job dies
    right after the vendor carried out the write, before Switchboard noted it."""
    from flows import effects
    real = effects._record

    def record(key: str, remote_id: Any, detail: Any) -> Any:
        if key.startswith(key_prefix):
            monkeypatch.setattr(effects, "_record", real)
            raise RuntimeError("crash")
        return real(key, remote_id, detail)

    monkeypatch.setattr(effects, "_record", record)


def inbox_rows(source: str | None = None) -> list[InboxEvent]:
    """The inbox, oldest first: every row, or one source's."""
    query = select(InboxEvent).order_by(InboxEvent.id)
    with store.session() as s:
        found = list(s.scalars(query if source is None else query.where(InboxEvent.source == source)))
        s.expunge_all()
    return found


def tickets() -> list[Ticket]:
    with store.session() as s:
        found = list(s.scalars(select(Ticket).order_by(Ticket.id)))
        s.expunge_all()
    return found


def customers(live_only: bool = True) -> list[Customer]:
    with store.session() as s:
        query = select(Customer).order_by(Customer.id)
        if live_only:
            query = query.where(Customer.merged_into_id.is_(None))
        found = list(s.scalars(query))
        s.expunge_all()
    return found


def identities(customer_id: int) -> dict[str, list[str]]:
    with store.session() as s:
        found: dict[str, list[str]] = {}
        for item in s.scalars(select(Identity).where(Identity.customer_id == customer_id).order_by(Identity.id)):
            found.setdefault(item.system, []).append(item.value)
    return found


def audit_actions() -> list[str]:
    with store.session() as s:
        return list(s.scalars(select(Audit.action).order_by(Audit.id)))


def audit_rows() -> list[Audit]:
    with store.session() as s:
        found = list(s.scalars(select(Audit).order_by(Audit.id)))
        s.expunge_all()
    return found


def objects(sandbox: Any, service: str, kind: str) -> list[dict[str, Any]]:
    """The live objects of one kind in a fake (HubSpot keeps archived ones flagged)."""
    found = sandbox.state(service).get(kind, {})
    items = list(found.values()) if isinstance(found, dict) else list(found)
    return [item for item in items if not (isinstance(item, dict) and item.get("archived"))]


def writes(sandbox: Any) -> list[tuple[str, str, str]]:
    """The outbound calls the fakes saw, as (service, method, path)."""
    return [(c["service"], c["method"], c["path"]) for c in sandbox.calls()]


def signed(secret: str, body: dict[str, Any], msg_id: str | None = None) -> tuple[str, dict[str, str]]:
    """A Standard Webhooks delivery of `body`, as the website form sends it."""
    raw = json.dumps(body)
    return raw, {**standard_webhook_headers(secret, raw.encode(), msg_id), "Content-Type": "application/json"}


def fixture(path: str) -> dict[str, Any]:
    return json.loads((ROOT / path).read_text())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
