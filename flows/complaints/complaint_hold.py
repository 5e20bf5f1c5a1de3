"""The legal hold a complaint puts on its evidence (policy 004 §13: the register and the documents behind it are
kept at least 5 years; policy 002: erasure and the end of consent stop at what a legal obligation keeps).

A complaint holds while it is open and, once closed, until its `keep_until` (closing day + `complaints.keep_years`).
Held are: its tickets (HappyFox and HubSpot, and the vendor contact the ticket names), and the person's mailbox
messages and Aircall calls (with their recordings) from the day before the complaint was received until it closed.
An erasure (on request, on consent withdrawal, or by retention) leaves these alone and says so in each step's
receipt under `kept`; flows/privacy/hold_release.py erases them by id (daily) once every hold on them has ended.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.records import AircallCallRecord, GmailMessage
from core import workdays
from core.models import Complaint, Ticket

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


def gmail_moment(message: GmailMessage) -> datetime | None:
    return message.received


def aircall_moment(call: AircallCallRecord) -> datetime | None:
    return call.started


# ---------------------------------------------------------------- when the hold ends

def ended(s: Session, complaint_ids: list[int], today: date | None = None) -> bool:
    """Whether every one of the complaints is closed and past its keep_until (a deleted row holds nothing)."""
    today = today or _today()
    for complaint in s.scalars(select(Complaint).where(Complaint.id.in_(complaint_ids))):
        if complaint.status != "closed" or complaint.keep_until is None or complaint.keep_until >= today:
            return False
    return True
