"""The complaint officer's workflow (policy 004 §11-§19), each step once per complaint (keys in `effects`):

- `route`: a new complaint goes to the officer at once (policy 004 §11): the HappyFox ticket is assigned to
  `complaints.officer.happyfox_assignee` and/or the staff group `happyfox_subscribers` is subscribed to it, and
  `officer.email` gets a mail (template `complaint_routed`). The answer to the complainant is due
  `complaints.answer_within_days` calendar days after receipt (`Complaint.answer_due_at`, to the day's end in
  Budapest), alerted by flows/complaints/complaint_deadlines.py.
- `answer_unfounded`: an unfounded complaint whose reasons staff recorded gets its written answer (policy 004 §16) as a
  customer-visible HappyFox reply from the template `complaint_unfounded_answer` in the customer's language (HU/EN),
  with the reasons; the 3-working-day deadline runs from the end of the investigation (flows/complaints/complaint_register.py).
- `request_measure`: a founded complaint's measure, deadline and responsible person recorded (policy 004 §17): the responsible
  person is mailed (template `complaint_measure`) at their address (`complaints.responsible`, or the field itself
  when it is an address); the deadline alerts reach them too, and the overdue one asks the officer to check the
  measure was carried out (policy 004 §18) until `measure_checked_at` is filled.
- policy 004 §19 (damages, authority, labour or criminal consequences) escalates to the managing director like a loss at the
  threshold: see `flows/complaints/complaint_register.py` `escalate`.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, time, timedelta, timezone

from core import audit, settings, store, workdays
from core.models import Complaint, Customer, Ticket
from flows import effects, vendors

log = logging.getLogger(__name__)
ACTOR = "complaints"
ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def answer_due(received_at: datetime) -> datetime:
    """The end (23:59:59 Budapest) of the day `answer_within_days` calendar days after receipt."""
    days = settings.get().config.complaints.answer_within_days
    day = received_at.astimezone(workdays.BUDAPEST).date() + timedelta(days=days)
    return datetime.combine(day, time(23, 59, 59), workdays.BUDAPEST).astimezone(timezone.utc)


def responsible_address(who: str | None) -> str | None:
    """A measure's responsible person's mail address: the YAML map by name, or the value when it is an address."""
    if not who:
        return None
    mapped = settings.get().config.complaints.responsible.get(who.strip())
    if mapped:
        return mapped
    return who.strip() if ADDRESS.match(who.strip()) else None


def _display(ticket: Ticket) -> str:
    return ticket.happyfox_display_id or f"#{ticket.id}"


def route(complaint_id: int) -> None:
    """Assign and announce a new complaint to the officer, once; set its answer deadline."""
    spec = settings.get().config.complaints
    with store.session() as s:
        c = s.get(Complaint, complaint_id)
        assert c is not None
        ticket = s.get(Ticket, c.ticket_id)
        assert ticket is not None
        if c.answer_due_at is None:
            c.answer_due_at = answer_due(c.received_at)
        happyfox_id, display = ticket.happyfox_id, _display(ticket)
        context = {"ticket_id": display, "subject": c.subject or "", "received_at": c.received_at,
                   "channel": c.channel, "answer_due_at": c.answer_due_at}
    officer = spec.officer
    happyfox = vendors.get().happyfox
    if happyfox_id and officer.happyfox_assignee is not None:
        assignee = officer.happyfox_assignee
        effects.once(f"complaint-route:{complaint_id}:assign",
                     lambda: str(happyfox.assign(happyfox_id, assignee).id))
    if happyfox_id and officer.happyfox_subscribers:
        effects.once(f"complaint-route:{complaint_id}:subscribe",
                     lambda: (happyfox.subscribe(happyfox_id, officer.happyfox_subscribers), str(happyfox_id))[1])
    if officer.email:
        to, key = officer.email, f"complaint-routed:{complaint_id}"
        if effects.send_once(key, lambda: vendors.get().mail.send(
                to, officer.template, spec.language, message_id=f"switchboard.{key}".replace(":", "-"),
                **context)):
            with store.session() as s:
                audit.record(s, ACTOR, "complaint.routed", complaint_id=complaint_id,
                             assignee=officer.happyfox_assignee)


def answer_unfounded(complaint_id: int) -> bool:
    """Post the written answer with reasons of an unfounded complaint, once; whether it was posted now."""
    spec = settings.get().config.complaints
    with store.session() as s:
        c = s.get(Complaint, complaint_id)
        assert c is not None
        if c.outcome != "unfounded" or not c.reasons or c.notice_sent_at is not None or c.status == "closed":
            return False
        ticket = s.get(Ticket, c.ticket_id)
        assert ticket is not None
        customer = s.get(Customer, c.customer_id) if c.customer_id else None
        language = customer.language if customer and customer.language in ("hu", "en") else "hu"
        happyfox_id = ticket.happyfox_id
        context = {"ticket_id": _display(ticket), "subject": c.subject or "", "received_at": c.received_at,
                   "reasons": c.reasons}
    if not happyfox_id:
        return False
    mail, happyfox = vendors.get().mail, vendors.get().happyfox
    _, text, _ = mail.render(spec.answer_template, language, **context)
    staff_id = settings.get().config.intake.staff_id
    key = f"complaint-answer:{complaint_id}"
    effects.once(key, lambda: str(happyfox.update_ticket(happyfox_id, staff_id, update=text).id))
    with store.session() as s:
        c = s.get(Complaint, complaint_id)
        assert c is not None
        if c.notice_sent_at is None:
            c.notice_sent_at = datetime.now(timezone.utc)
            audit.record(s, ACTOR, "complaint.notice_sent", ticket_id=c.ticket_id, complaint_id=c.id,
                         language=language, on_time=bool(c.notice_due_at and c.notice_sent_at <= c.notice_due_at))
    return True


def request_measure(complaint_id: int) -> bool:
    """Ask the responsible person to carry out a founded complaint's measure by its deadline, once per deadline;
    whether mailed now."""
    spec = settings.get().config.complaints
    with store.session() as s:
        c = s.get(Complaint, complaint_id)
        assert c is not None
        if c.outcome != "founded" or not (c.measure and c.measure_due_at and c.measure_responsible):
            return False
        to = responsible_address(c.measure_responsible)
        ticket = s.get(Ticket, c.ticket_id)
        assert ticket is not None
        due_at = c.measure_due_at
        context = {"ticket_id": _display(ticket), "subject": c.subject or "", "measure": c.measure,
                   "due_at": due_at, "responsible": c.measure_responsible}
    if to is None:
        log.warning("complaint %s: no mail address for the measure's responsible person", complaint_id)
        return False
    key = f"complaint-measure:{complaint_id}:{due_at.isoformat()}"
    sent = effects.send_once(key, lambda: vendors.get().mail.send(
        to, "complaint_measure", spec.language, message_id="switchboard." + key.replace(":", "-").replace("+", "-"),
        **context))
    if sent:
        with store.session() as s:
            audit.record(s, ACTOR, "complaint.measure_requested", complaint_id=complaint_id)
    return sent


def after_change(complaint_id: int) -> None:
    """The steps the register's new values call for (run after every sync of the complaint)."""
    answer_unfounded(complaint_id)
    request_measure(complaint_id)

