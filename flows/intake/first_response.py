"""The first-response SLA (policy 001 step 3: a member of staff contacts the reporter within 2 working days, the
promise the confirmation mail makes). Intake sets `Ticket.first_response_due_at` on the Hungarian calendar and
opening hours (core/workdays.py); the clock stops at the first response:

- the first customer-visible staff reply in HappyFox (an update `by.type == "staff"` whose message is not a private
  note, `message_type != "p"`; a message-less status or field change is no reply), read from the re-read ticket
  when its webhook arrives;
- or an answered outbound Aircall call to the customer (the call Switchboard logs in HubSpot), which answers every
  open ticket of theirs opened before it.

A ticket still waiting is *due* from the opening of the working day before its deadline and *overdue* after it;
each stage is mailed once (template `first_response_alert`, to `sla.alert_to`) and audited, an overdue one also
counted in `switchboard_sla_breaches_total{kind="first_response"}`. `pending()` feeds `switchboard sla report`;
`core/metrics.py` reads the answered-in-time count from the database for `/metrics`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select, update

from connectors.records import HappyFoxTicketFields
from core import audit, jobs, settings, store, workdays
from core.metrics import SLA_BREACHES
from core.models import Ticket
from flows import alerts, effects, identity, inbox, payloads, vendors
from flows.intake import calls

log = logging.getLogger(__name__)
ACTOR = "sla"
KIND = "first_response"


def _now() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- stopping the clock

def record(ticket_id: int, at: datetime, how: str) -> bool:
    """The ticket's first response came at `at` (`how`: reply | call); whether this call recorded it (an earlier
    response keeps its place: a conditional UPDATE, so two events racing record one)."""
    with store.session() as s:
        done = store.rowcount(s.execute(update(Ticket).where(
            Ticket.id == ticket_id, Ticket.first_response_at.is_(None)).values(first_response_at=at))) == 1
        if done:
            due = s.scalar(select(Ticket.first_response_due_at).where(Ticket.id == ticket_id))
            audit.record(s, ACTOR, "sla.first_response", ticket_id=ticket_id, how=how,
                         on_time=bool(due is None or at <= due))
    return done


def first_staff_reply(ticket: HappyFoxTicketFields) -> datetime | None:
    """The time of the first customer-visible staff reply on a HappyFox ticket, if any."""
    return min((item.timestamp for item in ticket.updates if item.public_staff_reply and item.timestamp),
               default=None)


def on_happyfox_ticket(event: inbox.Event) -> bool:
    """A ticket event: a known ticket still waiting whose hint shows a staff reply (in `updates` or
    `last_staff_reply_at`) is re-read, since the body is only a hint, and its first public staff reply recorded."""
    change = payloads.read(event, payloads.HappyFoxTicketEvent)
    with store.session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.happyfox_id == change.ticket_id,
                                                     Ticket.first_response_at.is_(None)))
    # Only a hint that shows a staff reply costs a read (a bare hint of every ticket change would double the GETs).
    if ticket_id is None or not (first_staff_reply(change.hint) or change.hint.last_staff_reply_at):
        return False
    at = first_staff_reply(vendors.get().happyfox.get_ticket(change.ticket_id))
    return at is not None and record(ticket_id, at, "reply")


def on_call_ended(event: inbox.Event) -> list[int]:
    """An answered outbound call to a customer answers their open tickets opened before it; their ids."""
    call = calls.Call.of(event)
    if call.direction != "outbound" or not call.answered or call.phone is None:
        return []
    with store.session() as s:
        customers = [c.id for c in identity.find(s, phone=call.phone)]
        waiting = list(s.scalars(select(Ticket.id).where(
            Ticket.customer_id.in_(customers), Ticket.first_response_at.is_(None), Ticket.is_closed.is_(False),
            Ticket.opened_at <= call.started_at))) if customers else []
    return [ticket_id for ticket_id in waiting if record(ticket_id, call.started_at, "call")]


# ---------------------------------------------------------------- waiting tickets and their alerts

@dataclass(frozen=True)
class Waiting:
    """An open ticket without a first response; ids and times only (printed and logged)."""
    ticket_id: int
    display_id: str | None
    channel: str
    opened_at: datetime
    due_at: datetime
    overdue: bool
    due_now: bool               # within the warning window (the working day before the deadline) or past it
    alerted: str | None         # due | overdue | None


def pending(now: datetime | None = None, since: datetime | None = None) -> list[Waiting]:
    """Every open ticket still waiting for its first response (deadline at or after `since`), soonest first."""
    now = now or _now()
    query = select(Ticket).where(Ticket.first_response_due_at.is_not(None), Ticket.first_response_at.is_(None),
                                 Ticket.is_closed.is_(False)).order_by(Ticket.first_response_due_at, Ticket.id)
    if since is not None:
        query = query.where(Ticket.first_response_due_at >= since)
    with store.session() as s:
        return [Waiting(t.id, t.happyfox_display_id or t.told_id, t.channel, t.opened_at, due,
                        now > due, now >= workdays.warning_starts(due),
                        "overdue" if t.response_overdue_alerted_at else "due" if t.response_due_alerted_at
                        else None)
                for t in s.scalars(query) if (due := t.first_response_due_at) is not None]  # always, by the query


def _send(item: Waiting, stage: str) -> None:
    config = settings.get().config
    to = config.sla.alert_to
    alerts.raise_alert("sla.first_response", f"sla.first_response:{item.ticket_id}:{stage}",
                       command="switchboard sla report", page=f"/staff/tickets/{item.ticket_id}",
                       mailed=[to or ""], ticket_id=item.ticket_id, stage=stage,
                       channel=item.channel, due_at=item.due_at.isoformat())
    if not to:
        return
    key = f"first-response-{stage}:{item.ticket_id}"
    effects.send_once(key, lambda: vendors.get().mail.send(
        to, "first_response_alert", "hu", message_id="switchboard." + key.replace(":", "-"),
        ticket_id=item.display_id or f"#{item.ticket_id}", opened_at=item.opened_at, due_at=item.due_at,
        channel=item.channel, stage=stage, working_days=config.sla.first_response_within_working_days))


def alert(now: datetime | None = None) -> list[tuple[int, str]]:
    """Mail every waiting ticket newly due or overdue, once per stage; (ticket id, stage) of each sent now."""
    now = now or _now()
    sent = []
    for item in pending(now):
        stage = "overdue" if item.overdue else "due" if item.due_now else None
        if stage is None or item.alerted == "overdue" or item.alerted == stage:
            continue
        column = Ticket.response_overdue_alerted_at if item.overdue else Ticket.response_due_alerted_at
        with store.claimed_once(Ticket, item.ticket_id, column, now) as mine:  # two clocks alert once
            if not mine:
                continue
            _send(item, stage)
        if item.overdue:
            SLA_BREACHES.labels(kind=KIND).inc()
        log.warning("ticket %s: first response %s (deadline %s)", item.ticket_id, stage, item.due_at.isoformat())
        with store.session() as s:
            audit.record(s, ACTOR, f"sla.first_response_{stage}", ticket_id=item.ticket_id,
                         due_at=item.due_at.isoformat())
        sent.append((item.ticket_id, stage))
    return sent


@jobs.periodic(jobs.crontab(minute="*/5"))
def check_first_response() -> int:
    return len(alert())
