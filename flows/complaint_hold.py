"""The legal hold a complaint puts on its evidence (policy 004 §13: the register and the documents behind it are
kept at least 5 years; policy 002: erasure and the end of consent stop at what a legal obligation keeps).

A complaint holds while it is open and, once closed, until its `keep_until` (closing day + `complaints.keep_years`).
Held are: its tickets (HappyFox and HubSpot, and the vendor contact the ticket names), and the person's mailbox
messages and Aircall calls (with their recordings) from the day before the complaint was received until it closed.
An erasure (on request, on consent withdrawal, or by retention) leaves these alone and says so in each step's
receipt under `kept`; `release_ended()` (daily) erases them by id once every hold on them has ended.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, jobs, store, workdays
from core.jobs import crontab
from core.models import Complaint, Erasure, ErasureStep, InboxEvent, Ticket

from . import vendors

log = logging.getLogger(__name__)
ACTOR = "erasure"
LEAD = timedelta(days=1)  # what the customer sent or said the day before the complaint belongs to its evidence


def _today() -> date:
    return datetime.now(timezone.utc).astimezone(workdays.BUDAPEST).date()


@dataclass
class Hold:
    """The complaints that hold a person's data now, and what they hold."""
    complaint_ids: list[int] = field(default_factory=list)
    ticket_ids: list[int] = field(default_factory=list)           # ours
    happyfox_tickets: list[str] = field(default_factory=list)
    hubspot_tickets: list[str] = field(default_factory=list)
    windows: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    until: date | None = None       # the latest keep_until; None while a complaint is open
    open: bool = False

    def __bool__(self) -> bool:
        return bool(self.complaint_ids)

    def covers(self, moment: datetime | None) -> bool:
        """Whether a message or call at `moment` documents one of the complaints."""
        if moment is None:
            return False
        return any(start - LEAD <= moment and (end is None or moment <= end) for start, end in self.windows)

    def note(self) -> str:
        if self.open:
            return "kept: complaint register, until 5 years after the complaint closes (complaint open)"
        return f"kept: complaint register, until {self.until.isoformat() if self.until else '?'}"

    def kept(self, **objects: Any) -> dict[str, Any]:
        """The `kept` part of a receipt: the note, the complaints and the held objects' ids."""
        return {"note": self.note(), "until": self.until.isoformat() if self.until and not self.open else None,
                "complaint_ids": self.complaint_ids, **{k: sorted(v) for k, v in objects.items()}}


def hold_of(s: Session, customer_ids: list[int], today: date | None = None) -> Hold:
    """The hold on the customers' data: their open complaints and the closed ones still within keep_until."""
    today = today or _today()
    hold = Hold()
    rows = s.execute(select(Complaint, Ticket).join(Ticket, Ticket.id == Complaint.ticket_id)
                     .where(Complaint.customer_id.in_(customer_ids)).order_by(Complaint.id)).all()
    for complaint, ticket in rows:
        if complaint.status != "closed":
            hold.open = True
        elif complaint.keep_until is None or complaint.keep_until < today:
            continue
        else:
            hold.until = max(hold.until or complaint.keep_until, complaint.keep_until)
        hold.complaint_ids.append(complaint.id)
        hold.ticket_ids.append(ticket.id)
        if ticket.happyfox_id:
            hold.happyfox_tickets.append(str(ticket.happyfox_id))
        if ticket.hubspot_ticket_id:
            hold.hubspot_tickets.append(ticket.hubspot_ticket_id)
        hold.windows.append((complaint.received_at, complaint.closed_at))
    return hold


def gmail_moment(message: dict[str, Any]) -> datetime | None:
    stamp = message.get("internalDate")
    return datetime.fromtimestamp(int(stamp) / 1000, timezone.utc) if str(stamp or "").isdigit() else None


def aircall_moment(call: dict[str, Any]) -> datetime | None:
    stamp = call.get("started_at")
    return datetime.fromtimestamp(int(stamp), timezone.utc) if isinstance(stamp, (int, float)) else None


# ---------------------------------------------------------------- when the hold ends

def ended(s: Session, complaint_ids: list[int], today: date | None = None) -> bool:
    """Whether every one of the complaints is closed and past its keep_until (a deleted row holds nothing)."""
    today = today or _today()
    for complaint in s.scalars(select(Complaint).where(Complaint.id.in_(complaint_ids))):
        if complaint.status != "closed" or complaint.keep_until is None or complaint.keep_until >= today:
            return False
    return True


def _release_happyfox(kept: dict[str, Any]) -> dict[str, Any]:
    happyfox = vendors.get().happyfox
    from connectors.errors import NotFound
    deleted = {t: happyfox.delete_ticket(t) for t in kept.get("happyfox_ticket", [])}
    users = {}
    for user_id in kept.get("happyfox", []):
        try:
            happyfox.anonymise_user(user_id)
            users[user_id] = "anonymised"
        except NotFound:
            users[user_id] = "gone"
    return {"tickets_deleted": deleted, "contacts_anonymised": users}


def _release_hubspot(kept: dict[str, Any]) -> dict[str, Any]:
    from .erasure_steps import REDACTED_TICKET, _tolerant
    hubspot = vendors.get().hubspot
    archived = {}
    for ticket_id in kept.get("hubspot_ticket", []):
        _tolerant(hubspot.update_ticket, ticket_id, REDACTED_TICKET)
        archived[ticket_id] = hubspot.archive_ticket(ticket_id)
    contacts = {c: hubspot.gdpr_delete_contact(c) for c in kept.get("hubspot", [])}
    return {"tickets_archived": archived, "contacts_gdpr_deleted": contacts}


def _release_aircall(kept: dict[str, Any]) -> dict[str, Any]:
    from connectors.errors import NotFound
    aircall = vendors.get().aircall
    done = {}
    for call_id in kept.get("aircall_call", []):
        try:
            call = aircall.get_call(call_id)
        except NotFound:
            done[call_id] = "gone"
            continue
        if call.get("recording"):
            aircall.delete_recording(call_id)
        if call.get("voicemail"):
            aircall.delete_voicemail(call_id)
        done[call_id] = "already_archived" if call.get("archived") else aircall.archive_call(call_id)
    return {"calls_archived": done}


def _release_gmail(kept: dict[str, Any]) -> dict[str, Any]:
    ids = list(kept.get("gmail_message", []))
    if ids:
        vendors.get().gmail.delete_messages(ids)
    return {"messages_deleted": ids}


def _release_switchboard(kept: dict[str, Any]) -> dict[str, Any]:
    """The held tickets become anonymous statistics; the vendor events about them that came in during the hold
    (they carry the complainant's contact) are redacted like an erasure's."""
    happyfox = {str(i) for i in kept.get("happyfox_ticket", [])}
    hubspot = {str(i) for i in kept.get("hubspot_ticket", [])}
    redacted = 0
    with store.session() as s:
        for ticket in s.scalars(select(Ticket).where(Ticket.id.in_(kept.get("ticket", [])))):
            ticket.subject = ticket.survey_comment = ticket.survey_token = None
            ticket.happyfox_id = ticket.hubspot_ticket_id = None
        for row in s.scalars(select(InboxEvent).where(InboxEvent.source.in_(("happyfox", "hubspot")))):
            payload = row.payload if isinstance(row.payload, dict) else {}
            about = str(payload.get("ticket_id") if row.source == "happyfox" else payload.get("objectId"))
            if about in (happyfox if row.source == "happyfox" else hubspot):
                row.payload = {"erased": "complaint hold ended"}
                redacted += 1
    return {"tickets_anonymised": list(kept.get("ticket", [])), "inbox_redacted": redacted}


RELEASE = {"happyfox": _release_happyfox, "hubspot": _release_hubspot, "aircall": _release_aircall,
           "gmail": _release_gmail, "switchboard": _release_switchboard}
# What each released object is tombstoned as (the systems of flows/retention.py).
TOMBSTONED = ("happyfox", "happyfox_ticket", "hubspot", "hubspot_ticket", "aircall_call")


def release_ended(today: date | None = None) -> list[tuple[int, str]]:
    """Erase what erasures kept for complaints whose hold has ended; (erasure id, processor) of each step
    released now. A failing release raises and is tried again on the next run (the receipt is unchanged)."""
    from . import retention
    with store.session() as s:
        steps = [(step.erasure_id, step.processor, step.receipt) for step in s.scalars(
            select(ErasureStep).join(Erasure).where(ErasureStep.status == "done").order_by(ErasureStep.id))
            if (step.receipt or {}).get("kept") and not step.receipt["kept"].get("released_at")]
    released = []
    for erasure_id, processor, receipt in steps:
        kept = receipt["kept"]
        with store.session() as s:
            if not ended(s, kept.get("complaint_ids", []), today):
                continue
        result = RELEASE[processor](kept)
        with store.session() as s:
            step = s.scalars(select(ErasureStep).where(ErasureStep.erasure_id == erasure_id,
                                                       ErasureStep.processor == processor)).one()
            step.receipt = {**step.receipt, "kept": {**kept, "released_at": datetime.now(timezone.utc).isoformat(),
                                                     "released": result}}
            retention.add_tombstones(s, erasure_id, **{k: kept[k] for k in TOMBSTONED if kept.get(k)})
            audit.record(s, ACTOR, "erasure.hold_released", erasure_id=erasure_id, processor=processor,
                         complaint_ids=kept.get("complaint_ids", []))
        released.append((erasure_id, processor))
    if released:
        log.info("complaint hold ended: %s erasure step(s) completed", len(released))
    return released


@jobs.periodic(crontab(minute="45", hour="1"))
def release_complaint_holds() -> int:
    """Daily, after the retention sweep: erase what a complaint's hold no longer keeps."""
    return len(release_ended())
