"""The first-response SLA over the sandbox (policy 001 step 3): a staff member answers within 2 Hungarian working
days. A private note does not stop the clock, a public HappyFox reply or an answered outbound call does; waiting
tickets are alerted once before and once after the deadline (a holiday inside it) to the shipped `sla.alert_to`,
listed by `switchboard sla report`, and counted on /metrics."""
from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from core import settings as settings_module
from core import store
from core.models import InboxEvent
from flows.intake import first_response
from sandbox.aircall import simulate_call
from switchboard.cli import main

from .delivery import deliver
from .flowkit import audit_actions, fast_vendors, put_form, run, tickets
from .test_complaints import Staff, _env

ALERT_TO = "ugyfelszolgalat-vezeto@example.com"      # config/switchboard.yaml sla.alert_to
# Wednesday 21 October 2026, 15:00 in Budapest (before closing): counts from that day. Friday the 23rd is a
# national holiday, so the second working day is Monday the 26th, closing 16:30 Budapest (15:30 UTC, winter time).
RECEIVED = datetime(2026, 10, 21, 13, 0, tzinfo=timezone.utc)
DUE = datetime(2026, 10, 26, 15, 30, tzinfo=timezone.utc)


def form_received_at(received: datetime, email: str = "kata.kovacs@example.com", **fields: str) -> int:
    inbox_id = put_form(email, **fields)
    with store.session() as s:
        s.execute(update(InboxEvent).where(InboxEvent.id == inbox_id).values(received_at=received))
    assert run(inbox_id) == "done"
    return tickets()[-1].id


def alerts(sandbox) -> list[dict]:
    return [m for m in sandbox.mail() if m["to"] == [ALERT_TO]]


def test_the_shipped_yaml_alerts_before_and_at_the_deadline_until_a_public_reply(flow, settings):
    assert settings.config.sla.alert_to == ALERT_TO
    ticket_id = form_received_at(RECEIVED)
    [ticket] = tickets()
    assert ticket.first_response_due_at == DUE and ticket.first_response_at is None

    assert first_response.alert(datetime(2026, 10, 21, 14, tzinfo=timezone.utc)) == []
    # Thursday the 22nd is the working day before the deadline (Friday is the holiday): due from its opening.
    assert first_response.alert(datetime(2026, 10, 22, 6, tzinfo=timezone.utc)) == [(ticket_id, "due")]
    assert first_response.alert(datetime(2026, 10, 23, 9, tzinfo=timezone.utc)) == []  # once per stage
    assert first_response.alert(DUE) == []                                                # at the deadline: due
    assert first_response.alert(datetime(2026, 10, 26, 15, 31, tzinfo=timezone.utc)) == [(ticket_id, "overdue")]
    mails = alerts(flow)
    assert [("esedékes" in m["subject"], "lejárt" in m["subject"]) for m in mails] == [(True, False), (False, True)]
    assert ticket.happyfox_display_id in mails[0]["subject"] and "2026-10-26 16:30" in mails[0]["text"]
    assert "kata" not in str(mails).lower()

    result = CliRunner().invoke(main, ["sla", "report"], env=_env(settings))
    settings_module.use(settings)
    fast_vendors()
    assert result.exit_code == 0, result.output
    assert "1 ticket(s) without a first response, 1 overdue" in result.output
    assert "2026-10-26 16:30" in result.output

    staff = Staff(settings, flow)
    staff.deliver(staff.write(ticket.happyfox_id, text="Megnézzük", private=True))   # a note is no answer
    staff.deliver(staff.write(ticket.happyfox_id, text=None, status=3))            # nor a status change
    assert tickets()[0].first_response_at is None
    staff.deliver(staff.write(ticket.happyfox_id, text="Kedves Ügyfelünk, ...", private=False))
    answered = tickets()[0]
    assert answered.first_response_at is not None and answered.first_response_at > DUE  # late, but answered
    assert first_response.pending() == []
    staff.deliver(staff.write(ticket.happyfox_id, text="Még egy válasz", private=False))
    assert tickets()[0].first_response_at == answered.first_response_at  # the first one counts
    assert audit_actions().count("sla.first_response") == 1


def test_an_answered_outbound_call_answers_the_customers_open_tickets_and_is_counted_on_metrics(flow, client):
    phone = "+36 30 765 4321"
    ticket_id = form_received_at(datetime.now(timezone.utc) - timedelta(minutes=10), "hivo@example.com")
    # Form tickets carry no phone: the customer is known by phone from an earlier inbound call.
    inbound = simulate_call(flow.running.sandbox, "inbound", phone, 30, answered=True, recording=False)
    with store.session() as s:
        from flows import identity
        identity.add_identity(s, identity.current(s, tickets()[0].customer_id), "phone", phone, "test")
    missed = simulate_call(flow.running.sandbox, "outbound", phone, 0, answered=False, recording=False)
    assert deliver("aircall", {"resource": "call", "event": "call.ended", "data": missed}).outcome == "done"
    assert tickets()[0].first_response_at is None   # nobody picked up: no response
    call = simulate_call(flow.running.sandbox, "outbound", phone, 45, answered=True, recording=False)
    assert deliver("aircall", {"resource": "call", "event": "call.ended", "data": call}).outcome == "done"
    answered = [t for t in tickets() if t.id == ticket_id][0]
    assert answered.first_response_at == datetime.fromtimestamp(call["started_at"], timezone.utc)
    assert inbound["id"] != call["id"]

    body = client.get("/metrics").get_data(as_text=True)
    assert 'switchboard_first_response_tickets{state="in_time"} 1.0' in body
    assert 'switchboard_first_response_tickets{state="late"} 0.0' in body


def test_a_failed_alert_mail_is_sent_by_the_next_check(flow, settings):
    ticket_id = form_received_at(RECEIVED)
    mail = first_response.vendors.get().mail
    port, mail.port = mail.port, _closed_port()
    with pytest.raises(Exception):
        first_response.alert(datetime(2026, 10, 27, 9, tzinfo=timezone.utc))
    assert tickets()[0].response_overdue_alerted_at is None and alerts(flow) == []
    mail.port = port
    assert first_response.alert(datetime(2026, 10, 27, 9, tzinfo=timezone.utc)) == [(ticket_id, "overdue")]
    assert len(alerts(flow)) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
