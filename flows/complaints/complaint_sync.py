"""The complaint register kept in step with HappyFox and HubSpot, from the same ticket events as the status
mirror (flows/closure/status_mirror.py): the fields staff fill in either system go into the register (flows/complaints/complaint_register.py
`apply`) and across to the other system; a closed HappyFox status closes the complaint, a reopened one reopens
it; a customer-visible staff reply after the investigation is the written answer; the officer's steps follow
(flows/complaints/complaint_officer.py).

A register edit in the staff console (`staff_edit`) goes the same way as a staff edit in HappyFox: into the
register, then onto both vendors' tickets (`push`, retried as a job when a vendor fails), then the officer's steps.

The inbox handlers at the bottom run after intake's (flows/routes.py) (a complaint-category ticket is registered as soon as intake
has made it) and only re-read a HappyFox ticket that is, or has just become, a complaint.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from connectors.records import HappyFoxStatus, HappyFoxTicket
from core import audit, jobs, settings, store
from core.models import Complaint, Ticket
from flows import inbox, payloads, vendors
from flows.complaints import complaint_fields as fields
from flows.complaints import complaint_officer
from flows.complaints.complaint_register import (
    ACTOR,
    apply,
    close,
    complaint_category,
    escalate,
    find,
    register,
    reopen,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- HappyFox and HubSpot in step

def _closed_status(name: str | None) -> bool | None:
    for spec in settings.get().config.statuses.values():
        if name in spec.happyfox:
            return spec.closed
    return None


def _notice_sent(ticket: HappyFoxTicket, since: datetime) -> datetime | None:
    """The first customer-visible staff reply at or after the end of the investigation: the written answer."""
    for update in ticket.updates:
        if update.public_staff_reply and update.timestamp and update.timestamp >= since:
            return update.timestamp
    return None


def sync_from_happyfox(happyfox_ticket: HappyFoxTicket) -> int | None:
    """Bring the register in step with a (freshly read) HappyFox ticket; the complaint id, or None."""
    spec = settings.get().config.complaints
    with store.session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.happyfox_id == happyfox_ticket.id))
    if ticket_id is None:
        return None
    complaint_id = register(ticket_id, description=happyfox_ticket.first_message,
                            force=complaint_category(happyfox_ticket.category_id) is not None)
    if complaint_id is None:
        return None
    complaint_officer.route(complaint_id)
    changed = apply(complaint_id, fields.happyfox_values(happyfox_ticket, spec), "happyfox")
    _mirror_to_hubspot(ticket_id, changed)  # before escalating: a retry after a failed mail finds nothing changed
    escalate(complaint_id)
    with store.session() as s:
        c = s.get(Complaint, complaint_id)
        assert c is not None
        if c.outcome and c.investigation_ended_at and c.notice_sent_at is None:
            c.notice_sent_at = _notice_sent(happyfox_ticket, c.investigation_ended_at)
            if c.notice_sent_at:
                audit.record(s, ACTOR, "complaint.notice_sent", ticket_id=c.ticket_id, complaint_id=c.id,
                             on_time=bool(c.notice_due_at and c.notice_sent_at <= c.notice_due_at))
    complaint_officer.after_change(complaint_id)
    status = happyfox_ticket.status
    closed = _closed_status(status.name if isinstance(status, HappyFoxStatus) else None)
    if closed:
        close(complaint_id, happyfox_ticket.modified_at or datetime.now(timezone.utc))
    elif closed is False:
        reopen(complaint_id)
    return complaint_id


def _mirror_to_hubspot(ticket_id: int, changed: dict[str, Any]) -> None:
    props = settings.get().config.complaints.hubspot_properties
    properties = {props[name]: fields.render(name, value) for name, value in changed.items() if name in props}
    with store.session() as s:
        hubspot_id = s.scalar(select(Ticket.hubspot_ticket_id).where(Ticket.id == ticket_id))
    if properties and hubspot_id:
        vendors.get().hubspot.update_ticket(hubspot_id, properties)  # setting a value twice is harmless


def _mirror_to_happyfox(ticket_id: int, changed: dict[str, Any]) -> None:
    config = settings.get().config
    wanted = config.complaints.happyfox_fields
    with store.session() as s:
        happyfox_id = s.scalar(select(Ticket.happyfox_id).where(Ticket.id == ticket_id))
    if not happyfox_id:
        return
    values = {vendors.happyfox_field_id(wanted[name]): fields.render(name, value)
              for name, value in changed.items() if name in wanted}
    if values:
        vendors.get().happyfox.update_custom_fields(happyfox_id, config.intake.staff_id, values)


def sync_from_hubspot(hubspot_ticket_id: str, property_name: str, value: Any) -> int | None:
    """A mapped HubSpot ticket property changed: into the register, and onto the HappyFox ticket. No echo loop:
    each side's write comes back as an event carrying the value the register already holds, so nothing changes
    and nothing is written again."""
    spec = settings.get().config.complaints
    name = fields.hubspot_field(property_name, spec)
    if name is None:
        return None
    with store.session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.hubspot_ticket_id == str(hubspot_ticket_id)))
    complaint_id = find(ticket_id) if ticket_id is not None else None
    if complaint_id is not None and ticket_id is not None:
        _mirror_to_happyfox(ticket_id, apply(complaint_id, {name: value}, "hubspot"))
        escalate(complaint_id)
        complaint_officer.after_change(complaint_id)
    return complaint_id


# ---------------------------------------------------------------- the staff console's edits

def push(complaint_id: int, names: list[str]) -> None:
    """Write the register's current values of `names` onto the HappyFox and HubSpot tickets (only the mapped
    fields; setting a value twice is harmless, so a retry may repeat either write)."""
    with store.session() as s:
        c = s.get(Complaint, complaint_id)
        if c is None:
            return
        values = {name: getattr(c, name) for name in names if name in fields.FIELDS}
        ticket_id = c.ticket_id
    _mirror_to_happyfox(ticket_id, values)
    _mirror_to_hubspot(ticket_id, values)


@jobs.job
def push_complaint_fields(complaint_id: int, names: list[str]) -> None:
    """`push` again after a vendor failed during a console edit; huey retries it with back-off."""
    push(int(complaint_id), list(names))


@jobs.job
def follow_up_complaint(complaint_id: int) -> None:
    """The steps after a console edit that failed then (a mail server down): escalation and the officer's steps,
    each sent once (flows/effects.py), so a retry repeats none that went out."""
    escalate(int(complaint_id))
    complaint_officer.after_change(int(complaint_id))


@dataclass(frozen=True)
class StaffEdit:
    changed: list[str]      # the register's fields this edit changed
    pushed: bool            # both vendors have them now (else push_complaint_fields retries)
    followed_up: bool       # escalation and the officer's steps ran (else follow_up_complaint retries)


def staff_edit(complaint_id: int, raw: dict[str, Any], actor: str) -> StaffEdit:
    """A console edit of the register's fields (field name → what staff typed), as a staff edit in HappyFox would
    be: into the register (audited under `actor`), onto both vendors, then escalation and the officer's steps. A
    vendor or mail failure after the register is saved is left to a job; a repeated submit changes and writes
    nothing."""
    failure: Exception | None = None
    # What this edit changed, as the locked row saw it: of two submits at once only one changes anything.
    changed = sorted(apply(complaint_id, raw, "staff", actor=actor))
    pushed = True
    if changed:
        try:
            push(complaint_id, changed)
        except Exception as exc:  # the register has the change; the vendors get it from the job
            _queued(complaint_id, actor, "complaint.push_queued", changed, exc)
            push_complaint_fields(complaint_id, changed)
            pushed = False
    if changed:
        try:
            escalate(complaint_id)
            complaint_officer.after_change(complaint_id)
        except Exception as exc:
            failure = exc
    if failure is not None:
        _queued(complaint_id, actor, "complaint.follow_up_queued", changed, failure)
        follow_up_complaint(complaint_id)
    return StaffEdit(changed, pushed, failure is None)


def _queued(complaint_id: int, actor: str, action: str, changed: list[str], exc: Exception) -> None:
    log.warning("complaint %s: %s after a console edit (%s)", complaint_id, action, type(exc).__name__)
    with store.session() as s:
        audit.record(s, actor, action, complaint_id=complaint_id, fields=changed, error=type(exc).__name__)


# ---------------------------------------------------------------- inbox handlers (routed in flows/routes.py)

def on_intake(event: inbox.Event) -> int | None:
    """After intake made the ticket of a form or manual report: the register record, when it is a complaint."""
    with store.session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.source_key == f"inbox:{event.id}"))
    if ticket_id is None:
        return None
    fields_in = event.payload.get("fields") or {}
    description = fields_in.get("details") if isinstance(fields_in, dict) else None
    complaint_id = register(ticket_id, description=description or event.payload.get("details"))
    if complaint_id is not None:
        complaint_officer.route(complaint_id)
    return complaint_id


def on_happyfox_ticket(event: inbox.Event) -> int | None:
    """A HappyFox ticket changed: only tickets in (or moved to) a complaint category are re-read."""
    change = payloads.read(event, payloads.HappyFoxTicketEvent)
    category_id, happyfox_id = change.hint.category_id, change.ticket_id
    with store.session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.happyfox_id == happyfox_id))
    if ticket_id is None or (find(ticket_id) is None and complaint_category(category_id) is None):
        return None
    return sync_from_happyfox(vendors.get().happyfox.get_ticket(happyfox_id))


def on_hubspot_property(event: inbox.Event) -> int | None:
    change = payloads.read(event, payloads.HubSpotEvent)
    if change.property_name is None:
        return None
    return sync_from_hubspot(str(change.object_id), change.property_name, change.property_value)
