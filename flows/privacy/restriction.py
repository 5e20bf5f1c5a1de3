"""Restriction of processing (GDPR Art. 18) and objection (Art. 21): the person's data is kept, but no flow writes
to it or mails them (the survey included) until the restriction is lifted.

One guard, in the inbox job (flows/dispatch.py), before any handler runs: an event about a restricted person (their
email or phone anywhere in the payload, however the number is written, or the id of one of their tickets or vendor
contacts) is not run but `held`, and an audit entry ties it to the customer. Lifting the restriction replays the
held events, so nothing they said is lost and the writes and mails happen then. Events of our own privacy sources
(the privacy mailbox, the admin API) are never held: a restricted person may still write to the privacy address.
The survey also checks for itself (a reconcile may find a closure without an event).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, jobs, store
from core.models import Audit, Customer, Identity, InboxEvent, Ticket
from flows import identity, inbox
from flows.privacy.traces import Traces

HELD = "held"
KINDS = ("restriction", "objection")
NEVER_HELD = ("privacy", "admin")  # a restricted person's own requests, and staff's
NEVER_HELD_KINDS = (("hubspot", "contact.privacyDeletion"),)  # an erasure is no processing a restriction stops
ID_KEYS = ("id", "objectId", "ticket_id", "ticketId")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def is_restricted(s: Session, customer_id: int) -> bool:
    """Whether the customer (or the one they were merged into) is restricted."""
    return identity.current(s, customer_id).restricted_at is not None


def _restricted(s: Session) -> dict[int, list[int]]:
    """Each restricted live customer's id -> its id and the ids merged into it."""
    found: dict[int, list[int]] = {}
    for customer in s.scalars(select(Customer).where(Customer.restricted_at.is_not(None),
                                                     Customer.merged_into_id.is_(None))):
        found[customer.id] = [customer.id, *s.scalars(select(Customer.id).where(
            Customer.merged_into_id == customer.id))]
    return found


def _ids_in(payload: dict[str, Any]) -> set[str]:
    """The object ids an event names at its top level and in `data` (a HappyFox ticket id, a HubSpot object id)."""
    found = set()
    data = payload.get("data")
    for level in (payload, data if isinstance(data, dict) else {}):
        for key in ID_KEYS:
            value = level.get(key)
            if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value):
                found.add(str(value))
    return found


def holder(event: inbox.Event) -> int | None:
    """The restricted customer an event is about, or None (almost always: one query finds nobody restricted)."""
    if event.source in NEVER_HELD or (event.source, event.kind) in NEVER_HELD_KINDS:
        return None
    with store.session() as s:
        restricted = _restricted(s)
        if not restricted:
            return None
        ids = _ids_in(event.payload)
        for customer_id, members in restricted.items():
            values = {(i.system, i.value) for i in s.scalars(select(Identity).where(Identity.customer_id.in_(members)))}
            traces = Traces.of([v for k, v in values if k == "email"], [v for k, v in values if k == "phone"])
            if traces.in_value(event.payload):
                return customer_id
            if not ids:
                continue
            vendor_ids = {v for k, v in values if k in ("hubspot", "happyfox", "aircall")}
            for ticket in s.scalars(select(Ticket).where(Ticket.customer_id.in_(members))):
                vendor_ids |= {str(x) for x in (ticket.happyfox_id, ticket.hubspot_ticket_id) if x}
            if ids & vendor_ids:
                return customer_id
    return None


def hold(event: inbox.Event, customer_id: int) -> None:
    """Record the held event against the customer; the caller leaves the row `held`."""
    with store.session() as s:
        audit.record(s, "restriction", "inbox.held", customer_id=customer_id, inbox_id=event.id,
                     source=event.source, event_kind=event.kind)


def restrict(customer_id: int, kind: str, *, request_id: int | None = None, actor: str = "cli") -> int:
    """Restrict the customer's processing; the live customer's id."""
    if kind not in KINDS:
        raise ValueError(f"unknown restriction {kind!r}")
    with store.session() as s:
        customer = identity.current(s, customer_id)
        if customer.restricted_at is None:
            customer.restricted_at, customer.restriction = _now(), kind
            audit.record(s, actor, "restriction.set", customer_id=customer.id, kind=kind, request_id=request_id)
        return customer.id


def lift(customer_id: int, *, actor: str = "cli") -> list[int]:
    """Lift the restriction and replay the events held meanwhile; their inbox ids (queued for the inbox job)."""
    with store.session() as s:
        customer = identity.current(s, customer_id)
        members = [customer.id, *s.scalars(select(Customer.id).where(Customer.merged_into_id == customer.id))]
        was = customer.restricted_at is not None
        customer.restricted_at, customer.restriction = None, None
        held = [int((a.detail or {}).get("inbox_id", 0)) for a in s.scalars(select(Audit).where(
            Audit.customer_id.in_(members), Audit.action == "inbox.held"))]
        held = sorted(set(s.scalars(select(InboxEvent.id).where(InboxEvent.id.in_(held),
                                                                InboxEvent.status == HELD))))
        if was:
            audit.record(s, actor, "restriction.lifted", customer_id=customer.id, replayed=len(held))
    replayed = inbox.replay(held)
    if replayed:
        jobs.enqueue("dispatch_inbox", replayed)  # by name: the inbox job's module imports this one
    return replayed
