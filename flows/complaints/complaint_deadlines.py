"""Complaint deadlines (docs/policy.md#complaint-register), alerted like the confirmation SLA (flows/intake/sla.py):

- unfounded: the written answer with reasons is due `sla.unfounded_complaint_notice_working_days` working days
  after the investigation ended (`Complaint.notice_due_at`, set by flows/complaints/complaint_register.py) until it is sent;
- founded: the measure's deadline (`measure_due_at`) and its responsible person, until the officer records the
  fulfilment check (`measure_checked_at`, policy 004 §18) or the complaint closes; its alerts also reach the
  responsible person (flows/complaints/complaint_officer.py `responsible_address`), and the overdue one asks for the check;
- every complaint: the answer to the complainant (`answer_due_at`, `complaints.answer_within_days` after receipt)
  until the written answer is sent (`notice_sent_at`); its alerts have their own columns (`answer_*_alerted_at`).

An item is *due* from the working day before its deadline and *overdue* after it. Each complaint gets one "due"
and one "overdue" alert per deadline (a changed deadline clears them): a mail with template `complaint_deadline`
to `complaints.alert_to` (else `sla.alert_to`), an audit entry, and the `switchboard_sla_breaches_total` metric
for an overdue one. `items()` feeds `switchboard complaints due`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from core import audit, jobs, settings, store, workdays
from core.metrics import SLA_BREACHES
from core.models import Complaint, Ticket
from flows import alerts, effects, vendors

log = logging.getLogger(__name__)
ACTOR = "complaints"


@dataclass(frozen=True)
class DueItem:
    complaint_id: int
    ticket_id: int
    display_id: str | None
    kind: str                   # notice | measure | answer
    due_at: datetime
    overdue: bool
    responsible: str | None
    alerted: str | None         # due | overdue | None: the last alert sent for this deadline


def _window_start(due_at: datetime) -> datetime:
    """Opening of the working day before the deadline's day: from then on the item is due."""
    day = due_at.astimezone(workdays.BUDAPEST).date() - timedelta(days=1)
    while not workdays.is_working_day(day):
        day -= timedelta(days=1)
    hours = workdays.opening_hours(day)
    assert hours is not None  # a working day always has hours
    opens = hours[0]
    return datetime.combine(day, opens, workdays.BUDAPEST).astimezone(timezone.utc)


def items(now: datetime | None = None, include_later: bool = False) -> list[DueItem]:
    """Open complaints' deadlines that are due or overdue at `now` (all pending ones with `include_later`)."""
    now = now or datetime.now(timezone.utc)
    found = []
    with store.session() as s:
        rows = s.execute(select(Complaint, Ticket.happyfox_display_id).join(Ticket, Ticket.id == Complaint.ticket_id)
                         .where(Complaint.status == "open").order_by(Complaint.id)).all()
        for c, display_id in rows:
            pending: list[tuple[str, datetime, str | None, datetime | None, datetime | None]] = []
            if c.outcome == "unfounded" and c.notice_due_at and c.notice_sent_at is None:
                pending.append(("notice", c.notice_due_at, None, c.due_alerted_at, c.overdue_alerted_at))
            elif c.outcome == "founded" and c.measure_due_at and c.measure_checked_at is None:
                pending.append(("measure", c.measure_due_at, c.measure_responsible, c.due_alerted_at,
                                c.overdue_alerted_at))
            if c.answer_due_at and c.notice_sent_at is None:
                pending.append(("answer", c.answer_due_at, None, c.answer_due_alerted_at,
                                c.answer_overdue_alerted_at))
            for kind, due_at, who, due_alerted, overdue_alerted in pending:
                if include_later or now >= _window_start(due_at):
                    alerted = "overdue" if overdue_alerted else "due" if due_alerted else None
                    found.append(DueItem(c.id, c.ticket_id, display_id, kind, due_at, now > due_at, who, alerted))
    return sorted(found, key=lambda item: item.due_at)


def _recipients() -> list[str]:
    config = settings.get().config
    return list(config.complaints.alert_to) or ([config.sla.alert_to] if config.sla.alert_to else [])


def _send(item: DueItem, stage: str) -> None:
    from .complaint_officer import responsible_address
    spec = settings.get().config.complaints
    to = _recipients()
    person = responsible_address(item.responsible) if item.kind == "measure" else None
    if person and person not in to:
        to.append(person)  # the person who must act hears of it, not only a shared list
    alerts.raise_alert("complaint.deadline", f"complaint.deadline:{item.complaint_id}:{item.kind}:{stage}:"
                       f"{item.due_at.isoformat()}", command="switchboard complaints due",
                       page=f"/staff/tickets/{item.ticket_id}", mailed=to, complaint_id=item.complaint_id,
                       ticket_id=item.ticket_id, deadline=item.kind, stage=stage, due_at=item.due_at.isoformat())
    if not to:
        return
    key = f"complaint-{stage}:{item.complaint_id}:{item.kind}:{item.due_at.isoformat()}"
    effects.send_once(key, lambda: vendors.get().mail.send(
        to, spec.alert_template, spec.language, message_id="switchboard." + key.replace(":", "-").replace("+", "-"),
        ticket_id=item.display_id or f"#{item.ticket_id}", kind=item.kind, stage=stage, due_at=item.due_at,
        responsible=item.responsible or "", working_days=settings.get().config.sla
        .unfounded_complaint_notice_working_days))


def alert(now: datetime | None = None) -> list[tuple[int, str]]:
    """Alert every deadline newly due or overdue; (complaint id, stage) of each alert sent now."""
    now = now or datetime.now(timezone.utc)
    sent = []
    for item in items(now):
        stage = "overdue" if item.overdue else "due"
        if item.alerted == stage or (item.alerted == "overdue"):
            continue
        if item.kind == "answer":
            column = Complaint.answer_overdue_alerted_at if item.overdue else Complaint.answer_due_alerted_at
        else:
            column = Complaint.overdue_alerted_at if item.overdue else Complaint.due_alerted_at
        with store.claimed_once(Complaint, item.complaint_id, column, now) as mine:  # two clocks alert once
            if not mine:
                continue
            _send(item, stage)
        if item.overdue:
            SLA_BREACHES.labels(kind=f"complaint_{item.kind}").inc()
        log.warning("complaint %s: %s deadline %s is %s", item.complaint_id, item.kind, item.due_at.isoformat(),
                    stage)
        with store.session() as s:
            audit.record(s, ACTOR, f"complaint.deadline_{stage}", ticket_id=item.ticket_id,
                         complaint_id=item.complaint_id, kind=item.kind, due_at=item.due_at.isoformat())
        sent.append((item.complaint_id, stage))
    return sent


@jobs.periodic(jobs.crontab(minute="*/15"))
def check_complaint_deadlines() -> int:
    return len(alert())
