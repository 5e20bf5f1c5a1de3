"""Consent as data (GDPR Art. 7(1): we must be able to show that the person consented, to what): the form's
privacy-notice checkbox, mapped in the YAML (`forms.<name>.consent_field`, `consent_version`), is stored per
submission with its time and the version of the text it showed. A withdrawal (flows/privacy/retention.py) marks the
person's consents withdrawn; what a legal obligation keeps beyond it is named in the erasure's receipt (`kept`,
with the reason from `privacy.kept_by_law`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, settings, store
from core.models import Consent, Erasure
from flows import identity, inbox, payloads

YES = ("yes", "true", "on", "1", "igen")


def on_form(event: inbox.Event) -> int | None:
    """After intake resolved the sender: their consent, once per submission; its id, or None without one."""
    submission = payloads.read(event, payloads.FormSubmission)
    form = submission.form or settings.get().config.default_form
    spec = settings.get().config.forms.get(form)
    if spec is None or spec.consent_field is None or spec.consent_version is None:
        return None
    value = str(submission.fields.get(spec.consent_field, "")).strip().lower()
    if value not in YES:
        return None
    fields = submission.fields
    with store.session() as s:
        if (found := s.scalar(select(Consent.id).where(Consent.inbox_id == event.id))) is not None:
            return found
        customers = identity.find(s, email=fields.get("email"), phone=fields.get("phone"))
        if not customers:
            return None  # intake did not record the sender (a blocked, erased person): nothing to consent for
        consent = Consent(customer_id=customers[0].id, inbox_id=event.id, form=form, version=spec.consent_version,
                          given_at=event.received_at)
        s.add(consent)
        s.flush()
        audit.record(s, "form", "consent.given", customer_id=customers[0].id, form=form,
                     version=spec.consent_version)
        return consent.id


def withdraw(s: Session, customer_ids: list[int], at: datetime) -> int:
    """Mark the customers' consents withdrawn; how many."""
    result = s.execute(update(Consent).where(Consent.customer_id.in_(customer_ids), Consent.withdrawn_at.is_(None))
                       .values(withdrawn_at=at))
    return store.rowcount(result)


def of(s: Session, customer_ids: list[int]) -> list[dict[str, Any]]:
    """The consents, for the access export."""
    return [{"form": c.form, "version": c.version, "given_at": c.given_at.isoformat(),
             "withdrawn_at": c.withdrawn_at.isoformat() if c.withdrawn_at else None}
            for c in s.scalars(select(Consent).where(Consent.customer_id.in_(customer_ids)).order_by(Consent.id))]


def kept_and_why(erasure: Erasure) -> list[dict[str, Any]]:
    """What the erasure kept and why, per processor, from its steps' receipts: the part of a withdrawal (or an
    erasure) that a legal obligation keeps."""
    reasons = settings.get().config.privacy.kept_by_law
    kept = []
    for step in erasure.steps:
        part = (step.receipt or {}).get("kept")
        if part:
            ids = {k: v for k, v in part.items() if k not in ("note", "until") and v}
            kept.append({"processor": step.processor, "what": "complaint_register", "until": part.get("until"),
                         "why": reasons.get("complaint_register", part.get("note", "")), "ids": ids})
    return kept
