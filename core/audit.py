"""The audit trail: who did what to which ticket or customer, with personal data only as salted hashes."""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import settings
from core.models import Audit


def subject_hash(value: str) -> str:
    """A salted, stable hash of an identifier (email, phone, vendor id): equal inputs give equal hashes, and the
    salt (SECRET_KEY) keeps a leaked table from being reversed by hashing a list of known addresses."""
    salt = settings.get().env.secret("secret_key") or "switchboard"
    return hmac.new(salt.encode(), value.strip().lower().encode(), hashlib.sha256).hexdigest()


def record(s: Session, actor: str, action: str, *, customer_id: int | None = None, ticket_id: int | None = None,
           **detail: Any) -> Audit:
    entry = Audit(actor=actor, action=action, customer_id=customer_id, ticket_id=ticket_id, detail=detail or None)
    s.add(entry)
    return entry


def listing(s: Session, actor: str | None = None, action: str | None = None, customer_id: int | None = None,
            limit: int = 100) -> list[Audit]:
    """The newest entries first, optionally of one actor, one action (or prefix ending in "."), one customer."""
    query = select(Audit).order_by(Audit.id.desc()).limit(limit)
    if actor:
        query = query.where(Audit.actor == actor)
    if action:
        query = query.where(Audit.action.startswith(action) if action.endswith(".") else Audit.action == action)
    if customer_id is not None:
        query = query.where(Audit.customer_id == customer_id)
    return list(s.scalars(query))
