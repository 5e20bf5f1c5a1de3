"""The complaint register (docs/policy.md#complaint-register): register, fill, escalate, set deadlines, close.

- `register(ticket_id)`: a ticket whose category has `complaint: true` gets one register record (the intake of
  a form, a manual report or a mailbox ticket; a ticket moved to a complaint category in HappyFox too).
- `apply(complaint_id, values, source)`: the fields staff fill (YAML-mapped HappyFox custom fields, HubSpot ticket
  properties) into the register; `flows/complaints/complaint_sync.py` brings them from ticket events and keeps the two
  vendors in step, and closes the complaint with its HappyFox ticket.
- `escalate`: a potential loss at or above the threshold, or a policy 004 §19 matter (`referral`: damages, authority, labour
  or criminal consequences), is mailed to the managing director once per complaint, also when raised later (the send is keyed `complaint-escalation:<id>` in `effects`).
- Deadlines: unfounded → the written answer with reasons is due 3 working days after the investigation ended;
  founded → the measure's deadline. `flows/complaints/complaint_deadlines.py` lists and alerts them.
- `close`: status, closing time, keep-until (closure + 5 years) and the removal of the identification data
  collected for the complaint (our `customer_*` columns; the customer record itself is retention's business).
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import audit, settings, store, workdays
from core.models import Complaint, Customer, Ticket
from flows import effects, identity, inbox, vendors
from flows.complaints import complaint_fields as fields

log = logging.getLogger(__name__)
ACTOR = "complaints"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def is_complaint(category: str | None) -> bool:
    spec = settings.get().config.categories.get(category or "")
    return bool(spec and spec.complaint)


def complaint_category(happyfox_category_id: Any) -> str | None:
    """The YAML category with `complaint: true` that a HappyFox category id maps to, if any."""
    for name, spec in settings.get().config.categories.items():
        if spec.complaint and str(spec.happyfox) == str(happyfox_category_id):
            return name
    return None


def find(ticket_id: int) -> int | None:
    with store.session() as s:
        return s.scalar(select(Complaint.id).where(Complaint.ticket_id == ticket_id))


# ---------------------------------------------------------------- register

def register(ticket_id: int, description: str | None = None, force: bool = False) -> int | None:
    """The register record of a complaint-category ticket, made once; None when the ticket is no complaint.
    `force`: HappyFox says the ticket is in a complaint category although ours still has the old one."""
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        if ticket is None or not (force or is_complaint(ticket.category)):
            return None
        existing = s.scalar(select(Complaint.id).where(Complaint.ticket_id == ticket_id))
        if existing is not None:
            return existing
        name = email = phone = None
        if ticket.customer_id is not None:
            customer = s.get(Customer, ticket.customer_id)
            if customer is not None:
                name = " ".join(p for p in (customer.last_name, customer.first_name) if p) or None
            email = identity.value_of(s, ticket.customer_id, "email")
            phone = identity.value_of(s, ticket.customer_id, "phone")
        complaint = Complaint(ticket_id=ticket.id, customer_id=ticket.customer_id, customer_name=name,
                              customer_email=email, customer_phone=phone, subject=ticket.subject,
                              description=description or ticket.subject, received_at=ticket.opened_at,
                              channel=ticket.channel, status="open")
        try:
            with s.begin_nested():
                s.add(complaint)
                s.flush()
        except IntegrityError:  # a concurrent handler registered it first
            return s.scalar(select(Complaint.id).where(Complaint.ticket_id == ticket_id))
        audit.record(s, ACTOR, "complaint.registered", customer_id=ticket.customer_id, ticket_id=ticket.id,
                     complaint_id=complaint.id, channel=ticket.channel)
        return complaint.id


# ---------------------------------------------------------------- fields staff fill

def apply(complaint_id: int, raw: dict[str, Any], source: str, actor: str = ACTOR) -> dict[str, Any]:
    """Store the staff-filled values `raw` (field name → vendor value); the typed values that changed. An
    unreadable value is skipped and audited by field name. The caller mirrors the change to the other vendor first
    and escalates after (`escalate`): a mail that fails then leaves no change unmirrored, since its retry finds
    nothing changed. `actor`: who the audit names (the staff console passes the signed-in person; a vendor's edit is
    the register's own)."""
    spec = settings.get().config.complaints
    changed: dict[str, Any] = {}
    bad: list[str] = []
    with store.session() as s:
        # Locked (PostgreSQL; SQLite's writers queue already): of two edits at once, the second sees the first's
        # values, so only one of them reports the change and writes it on to the vendors.
        c = s.get(Complaint, complaint_id, with_for_update=True)
        assert c is not None
        for name, value in raw.items():
            if name not in fields.FIELDS:
                continue
            try:
                typed = fields.parse(name, value, spec)
            except fields.BadValue as exc:
                bad.append(str(exc))
                continue
            if typed is None and name == "investigation_ended_at":
                continue  # an empty field keeps the end we recorded with the outcome
            if getattr(c, name) != typed:
                setattr(c, name, typed)
                changed[name] = typed
        if changed:
            _derive(c, changed)
            audit.record(s, actor, "complaint.updated", ticket_id=c.ticket_id, complaint_id=c.id, source=source,
                         fields=sorted(changed))
        if bad:
            audit.record(s, actor, "complaint.unreadable_fields", ticket_id=c.ticket_id, complaint_id=c.id,
                         source=source, problems=bad)
            log.warning("complaint %s: unreadable fields from %s: %s", complaint_id, source, "; ".join(bad))
    return changed


def _derive(c: Complaint, changed: dict[str, Any]) -> None:
    """The deadlines that follow from the outcome (policy 004)."""
    days = settings.get().config.sla.unfounded_complaint_notice_working_days
    if c.outcome is not None and c.investigation_ended_at is None:
        c.investigation_ended_at = _now()  # the investigation ended when its outcome was recorded
    due = workdays.due_after_working_days(c.investigation_ended_at, days) \
        if c.outcome == "unfounded" and c.investigation_ended_at else None
    if due != c.notice_due_at:
        c.notice_due_at = due
        c.due_alerted_at = c.overdue_alerted_at = None
    elif "measure_due_at" in changed or "outcome" in changed:
        c.due_alerted_at = c.overdue_alerted_at = None  # a new deadline deserves its own alerts
    if "received_at" in changed or c.answer_due_at is None:
        from flows.complaints.complaint_officer import answer_due
        c.answer_due_at = answer_due(c.received_at)


def escalate(complaint_id: int) -> bool:
    """Mail the managing director about a potential loss at or above the threshold, once; whether sent now."""
    config = settings.get().config
    spec = config.complaints
    with store.session() as s:
        c = s.get(Complaint, complaint_id)
        assert c is not None
        at_threshold = c.loss_amount_huf is not None and c.loss_amount_huf >= spec.escalation_threshold_huf
        if not (at_threshold or c.referral) or c.escalated_at:  # policy 004 §11 loss, or §19 legal consequences
            return False
        ticket = s.get(Ticket, c.ticket_id)
        assert ticket is not None
        context = {"ticket_id": ticket.happyfox_display_id or f"#{ticket.id}", "subject": c.subject or "",
                   "loss_amount": c.loss_amount_huf, "event_type": spec.label(c.event_type, spec.language),
                   "description": c.description or "", "received_at": c.received_at,
                   "referral": c.referral or ""}
    to = spec.managing_director
    if not to:
        raise inbox.Permanent("complaints.managing_director is not configured: the escalation cannot be sent")
    mail = vendors.get().mail
    key = f"complaint-escalation:{complaint_id}"
    sent = effects.send_once(key, lambda: mail.send(to, spec.escalation_template,
                                                    spec.language, message_id=f"switchboard.{key}".replace(":", "-"),
                                                    **context))
    with store.session() as s:
        c = s.get(Complaint, complaint_id)
        assert c is not None
        if c.escalated_at is None:
            c.escalated_at = _now()
            audit.record(s, ACTOR, "complaint.escalated", ticket_id=c.ticket_id, complaint_id=c.id,
                         loss_amount_huf=c.loss_amount_huf, threshold_huf=spec.escalation_threshold_huf,
                         referral=c.referral)
    return sent


# ---------------------------------------------------------------- closing

def close(complaint_id: int, at: datetime | None = None) -> bool:
    """Close the complaint: closing time, keep-until, and the identification data collected for it removed.
    Whether this call closed it."""
    at = at or _now()
    keep_years = settings.get().config.complaints.keep_years
    with store.session() as s:
        c = s.get(Complaint, complaint_id)
        assert c is not None
        if c.status == "closed":
            return False
        c.status, c.closed_at = "closed", at
        c.keep_until = _years_after(at.astimezone(workdays.BUDAPEST).date(), keep_years)
        c.customer_name = c.customer_email = c.customer_phone = None  # policy 004: deleted when it closes
        c.id_removed_at = _now()
        audit.record(s, ACTOR, "complaint.closed", ticket_id=c.ticket_id, complaint_id=c.id, outcome=c.outcome,
                     identification_removed=True, keep_until=c.keep_until.isoformat())
        return True


def reopen(complaint_id: int) -> bool:
    with store.session() as s:
        c = s.get(Complaint, complaint_id)
        assert c is not None
        if c.status != "closed":
            return False
        c.status, c.closed_at, c.keep_until = "open", None, None
        audit.record(s, ACTOR, "complaint.reopened", ticket_id=c.ticket_id, complaint_id=c.id)
        return True


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)
