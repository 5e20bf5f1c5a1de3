"""Tombstones: after an erasure only salted hashes of the person's identifiers remain (`core.audit.subject_hash`).

`is_tombstoned(...)` is the check every sync flow makes before copying a person in from a vendor, so that a system
still answering with stale data (a late webhook, a reconciliation page, a HubSpot event) cannot bring the erased
person back. Vendor object ids (a HappyFox ticket, an Aircall call) are tombstoned for good; an email or a phone
only blocks data from before the erasure (`occurred_at`), so a new, explicit contact starts a new customer.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, store
from core.models import InboxEvent, Tombstone
from flows import identity

log = logging.getLogger(__name__)
PERSON_SYSTEMS = ("email", "phone")  # what a new, explicit contact may legitimately bring again


def _now() -> datetime:
    return datetime.now(timezone.utc)


def tombstone_keys(**identifiers: Any) -> dict[str, str]:
    """{hash: system} for identifiers given as `email=`, `phone=`, `hubspot=`, `aircall_call=`... (a value or a list
    of values). Email and phone are normalised first, so every spelling of a number hashes alike."""
    keys: dict[str, str] = {}
    for system, values in identifiers.items():
        if values is None:
            continue
        for value in values if isinstance(values, (list, tuple, set)) else [values]:
            normal = identity.normalise(system, value) if system in PERSON_SYSTEMS else (
                str(value).strip() if value not in (None, "") else None)
            if normal:
                keys[audit.subject_hash(f"{system}:{normal}")] = system
    return keys


def add_tombstones(s: Session, erasure_id: int | None, **identifiers: Any) -> int:
    """Record the identifiers' hashes (once each); how many were new."""
    added = 0
    for key in tombstone_keys(**identifiers):
        existing = s.get(Tombstone, key)
        if existing is not None:
            # A later erasure of the same identifier: what came in since the first one is now stale data too.
            existing.created_at = _now()
        else:
            try:
                with s.begin_nested():
                    s.add(Tombstone(hash=key, erasure_id=erasure_id))
                added += 1
            except IntegrityError:  # a concurrent step recorded it
                pass
    return added


def is_tombstoned(email: str | None = None, phone: str | None = None, *, occurred_at: datetime | None = None,
                  **vendor_ids: Any) -> bool:
    """Whether these identifiers belong to an erased person, so that a sync flow must not copy them back.

    `vendor_ids` are the vendors' ids of the person or of their objects: `hubspot`, `happyfox`, `aircall` (contact
    ids), `hubspot_ticket`, `hubspot_call`, `happyfox_ticket`, `aircall_call`; a tombstoned one always blocks.
    An email or phone blocks data that `occurred_at` before the erasure (all data when `occurred_at` is None):
    a person who contacts us again after their erasure becomes a new customer."""
    person = tombstone_keys(email=email, phone=phone)
    objects = tombstone_keys(**vendor_ids)
    if not person and not objects:
        return False
    with store.session() as s:
        if objects and s.scalar(select(Tombstone.hash).where(Tombstone.hash.in_(list(objects))).limit(1)):
            return True
        if not person:
            return False
        query = select(Tombstone.hash).where(Tombstone.hash.in_(list(person)))
        if occurred_at is not None:
            query = query.where(Tombstone.created_at >= occurred_at)
        return s.scalar(query.limit(1)) is not None


def blocked(actor: str, inbox_id: int | None = None, **identifiers: Any) -> bool:
    """`is_tombstoned`, for a flow's one-line guard: when it blocks, the event that brought the stale data
    (`inbox_id`) has its payload redacted, and the block is audited with hashes only."""
    if not is_tombstoned(**identifiers):
        return False
    with store.session() as s:
        row = s.get(InboxEvent, inbox_id) if inbox_id is not None else None
        if row is not None:
            row.payload = {"erased": "tombstone"}
        audit.record(s, actor, "sync.blocked_erased", inbox_id=inbox_id,
                     hashes=sorted(tombstone_keys(**{k: v for k, v in identifiers.items() if k != "occurred_at"})))
    log.info("%s: stale data of an erased person not copied back", actor)
    return True
