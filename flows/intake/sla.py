"""The confirmation SLA (policy 001, docs/policy.md#confirmation): a customer is told their ticket id within 2 working
days of receipt (Hungarian working days and opening hours, core/workdays.py). Intake sets `Ticket.confirm_due_at` and
`confirmed_at`; this flow raises an alert for every ticket that missed it, once per ticket (`Ticket.sla_alerted_at`): a
log line, the `switchboard_sla_breaches_total` metric, and a mail with template `sla_alert` to `config.sla.alert_to`.
`breaches()` feeds `switchboard sla report`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import ColumnElement, and_, or_, select

from core import audit, jobs, settings, store
from core.metrics import SLA_BREACHES
from core.models import Ticket
from flows import alerts, effects, vendors

log = logging.getLogger(__name__)
ACTOR = "sla"
KIND = "confirmation"
# Tickets overdue for longer are reported but not alerted: a first deployment over an old database must not mail
# staff about every ticket of past years.
ALERT_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Breach:
    """One missed confirmation; ids and times only (the report is printed and logged)."""
    ticket_id: int
    display_id: str | None
    channel: str
    opened_at: datetime
    due_at: datetime
    confirmed_at: datetime | None
    alerted_at: datetime | None


def _missed(now: datetime) -> ColumnElement[bool]:
    """Due before `now` and not confirmed by the due time."""
    return and_(Ticket.confirm_due_at.is_not(None), Ticket.confirm_due_at < now,
                or_(Ticket.confirmed_at.is_(None), Ticket.confirmed_at > Ticket.confirm_due_at))


def breaches(since: datetime | None = None, now: datetime | None = None) -> list[Breach]:
    """Every ticket that missed its confirmation deadline (due at or after `since`), oldest first."""
    now = now or datetime.now(timezone.utc)
    query = select(Ticket).where(_missed(now)).order_by(Ticket.confirm_due_at, Ticket.id)
    if since is not None:
        query = query.where(Ticket.confirm_due_at >= since)
    with store.session() as s:
        return [Breach(t.id, t.happyfox_display_id or t.told_id, t.channel, t.opened_at, due,
                       t.confirmed_at, t.sla_alerted_at) for t in s.scalars(query)
                if (due := t.confirm_due_at) is not None]  # always, by the query


def _alert(ticket: Ticket) -> None:
    config = settings.get().config
    to = config.sla.alert_to
    # Also to the `alerts:` targets (a webhook, say), but not as a second mail to whom the SLA mail went.
    alerts.raise_alert("sla.confirmation", f"sla.confirmation:{ticket.id}", command="switchboard sla report",
                       page=f"/staff/tickets/{ticket.id}", mailed=[to or ""], ticket_id=ticket.id,
                       channel=ticket.channel, due_at=ticket.confirm_due_at.isoformat() if ticket.confirm_due_at
                       else None)
    if not to:
        return
    display_id = ticket.happyfox_display_id or ticket.told_id or str(ticket.id)
    effects.send_once(f"sla-alert:{ticket.id}", lambda: vendors.get().mail.send(
        to, "sla_alert", "hu", message_id=f"sla-alert-{ticket.id}", ticket_id=display_id,
        subject=ticket.subject or "", opened_at=ticket.opened_at, due_at=ticket.confirm_due_at,
        channel=ticket.channel, working_days=config.sla.confirm_within_working_days))


def check(now: datetime | None = None) -> list[int]:
    """Alert every ticket newly found in breach; the ids alerted now."""
    now = now or datetime.now(timezone.utc)
    with store.session() as s:
        due = list(s.scalars(select(Ticket).where(_missed(now), Ticket.sla_alerted_at.is_(None),
                                                  Ticket.confirm_due_at >= now - ALERT_WINDOW)
                             .order_by(Ticket.id).limit(500)))
        s.expunge_all()
    alerted = []
    for ticket in due:
        with store.claimed_once(Ticket, ticket.id, Ticket.sla_alerted_at, now) as mine:  # two checks alert once
            if not mine:
                continue
            _alert(ticket)
        SLA_BREACHES.labels(kind=KIND).inc()
        log.warning("ticket %s missed its confirmation deadline %s (channel %s)", ticket.id,
                    ticket.confirm_due_at.isoformat() if ticket.confirm_due_at else None, ticket.channel)
        with store.session() as s:
            audit.record(s, ACTOR, "sla.breached", customer_id=ticket.customer_id, ticket_id=ticket.id, kind=KIND)
        alerted.append(ticket.id)
    return alerted


@jobs.periodic(jobs.crontab(minute="*/5"))
def check_sla() -> int:
    """The periodic check (every 5 minutes)."""
    return len(check())
