"""A complaint's life over the sandbox (policy 004): intake of a complaint-category form, the register fields
filled by staff in HappyFox (and one in HubSpot), escalation exactly once at the threshold, the unfounded
notice deadline on the Hungarian calendar (over Christmas), due and overdue alerts, closure with the
identification data removed and the record kept; faults and repeats on the way."""
from __future__ import annotations

import socket
from datetime import date, datetime, timezone
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from core import settings as settings_module
from core import store
from core.models import Complaint
from core.settings import SANDBOX_DEFAULTS
from core.workdays import BUDAPEST
from flows.complaints import complaint_deadlines, complaint_register
from switchboard.cli import main

from .delivery import deliver
from .flowkit import audit_actions, audit_rows, fast_vendors, objects, put_form, row, run, tickets

MD = "ugyvezeto@example.com"


class Staff:
    """A HappyFox agent working in the fake's API, as the agent portal would, and the smart rule that posts the
    changed ticket to us (stored in the inbox as the receiver does, then run)."""

    def __init__(self, settings: Any, sandbox: Any) -> None:
        env = settings.env
        self.http = httpx.Client(base_url=f"{sandbox.base_url}/api/1.1/json", timeout=10,
                                 auth=(env.secret("happyfox_api_key"), env.secret("happyfox_auth_code")))
        self.fields = {f["name"]: f["id"] for f in self.http.get("/ticket_custom_fields/").json()}
        self.mapping = settings.config.complaints.happyfox_fields

    def write(self, ticket_id: int, text: str | None = "checked", private: bool = True, status: int | None = None,
              **values: Any) -> dict[str, Any]:
        data: dict[str, Any] = {"staff": 1, **({"text": text} if text else {}), **({"status": status} if status else {})}
        data.update({f"t-cf-{self.fields[self.mapping[name]]}": value for name, value in values.items()})
        path = f"/ticket/{ticket_id}/{'staff_pvtnote' if private else 'staff_update'}/"
        return self.http.post(path, json=data).raise_for_status().json()

    def deliver(self, ticket: dict[str, Any]) -> int:
        result = deliver("happyfox", ticket)
        inbox_id = result.inbox_id
        assert result.outcome == "done", row(inbox_id).last_error
        return inbox_id


def complaint() -> Complaint:
    with store.session() as s:
        [found] = s.scalars(select(Complaint)).all()
        s.expunge_all()
    return found


def escalations(sandbox: Any) -> list[dict[str, Any]]:
    return [m for m in sandbox.mail() if m["to"] == [MD]]


def test_a_complaints_life(flow, settings):
    inbox_id = put_form(purpose="panasz", summary="Hibás számla", details="Kétszer terhelték a kártyámat.")
    assert run(inbox_id) == "done"
    [ticket] = tickets()
    c = complaint()
    assert c.ticket_id == ticket.id and c.status == "open" and c.channel == "form"
    assert (c.customer_name, c.customer_email) == ("Kovács Kata", "kata.kovacs@example.com")
    assert c.description == "Kétszer terhelték a kártyámat." and c.subject == "Hibás számla"
    assert c.received_at == ticket.opened_at

    staff = Staff(settings, flow)
    hf_id = ticket.happyfox_id
    staff.deliver(staff.write(hf_id, event_type="Külső csalás", person_concerned="Ügyfélszolgálat",
                              loss_amount_huf="99 999"))
    c = complaint()
    assert (c.event_type, c.person_concerned, c.loss_amount_huf) == ("external_fraud", "Ügyfélszolgálat", 99999)
    assert escalations(flow) == [] and c.escalated_at is None
    [mirror] = objects(flow, "hubspot", "tickets")  # the fields staff filled, in step on the HubSpot ticket
    assert mirror["properties"]["complaint_event_type"] == "external_fraud"
    assert mirror["properties"]["complaint_loss_amount_huf"] == "99999"

    staff.deliver(staff.write(hf_id, loss_amount_huf="100 000 Ft"))  # at the threshold: at once
    [mail] = escalations(flow)
    assert ticket.happyfox_display_id in mail["subject"] and "100 000 Ft" in mail["subject"]
    assert "Külső csalás" in mail["text"] and "Kétszer terhelték" in mail["text"]
    staff.deliver(staff.write(hf_id, loss_amount_huf=250000))  # raised later: still the one mail
    assert len(escalations(flow)) == 1 and complaint().loss_amount_huf == 250000
    assert audit_actions().count("complaint.escalated") == 1

    # Unfounded, investigation ended on Wednesday 21 October 2026: Friday the 23rd is a national holiday, so the
    # third working day is Tuesday the 27th, closing time 16:30 in Budapest (15:30 UTC), not Monday the 26th.
    staff.deliver(staff.write(hf_id, outcome="megalapozatlan", investigation_ended_at="2026-10-21"))
    c = complaint()
    assert c.outcome == "unfounded" and c.notice_due_at == datetime(2026, 10, 27, 15, 30, tzinfo=timezone.utc)
    assert mirror_props(flow)["complaint_investigation_ended"] == "2026-10-21"

    assert complaint_deadlines.alert(datetime(2026, 10, 22, 9, tzinfo=timezone.utc)) == []  # not due yet
    assert complaint_deadlines.alert(datetime(2026, 10, 26, 9, tzinfo=timezone.utc)) == [(c.id, "due")]
    assert complaint_deadlines.alert(datetime(2026, 10, 26, 10, tzinfo=timezone.utc)) == []
    assert complaint_deadlines.alert(datetime(2026, 10, 28, 9, tzinfo=timezone.utc)) == [(c.id, "overdue")]
    alerts = [m for m in flow.mail() if m["to"] == ["panaszkezeles@example.com"] and "határidő" in m["subject"]]
    assert [("esedékes" in m["subject"], "lejárt" in m["subject"]) for m in alerts] == [(True, False), (False, True)]
    assert "2026-10-27 16:30" in alerts[0]["text"]

    result = CliRunner().invoke(main, ["complaints", "due", "--all"], env=_env(settings))
    settings_module.use(settings)  # the command loaded its own settings; this test's come back
    fast_vendors()
    assert result.exit_code == 0, result.output
    assert "notice" in result.output and "2026-10-27 16:30" in result.output and "overdue" in result.output

    # The written answer (a customer-visible reply) ends the notice deadline; then the ticket is closed.
    staff.deliver(staff.write(hf_id, text="Panaszát megvizsgáltuk, indoklás: ...", private=False))
    assert complaint().notice_sent_at is not None
    closed = staff.deliver(staff.write(hf_id, text=None, status=7))  # 7: Closed in the fake
    c = complaint()
    assert c.status == "closed" and c.closed_at is not None
    assert (c.customer_name, c.customer_email, c.customer_phone) == (None, None, None) and c.id_removed_at
    closed_on = c.closed_at.astimezone(BUDAPEST).date()
    assert c.keep_until == date(closed_on.year + 5, closed_on.month, closed_on.day)
    # The register keeps the rest.
    assert (c.event_type, c.loss_amount_huf, c.outcome, c.subject) == ("external_fraud", 250000, "unfounded",
                                                                       "Hibás számla")
    assert complaint_deadlines.items(datetime(2027, 1, 5, tzinfo=timezone.utc)) == []  # closed: nothing due
    assert run(closed) == "skipped" and audit_actions().count("complaint.closed") == 1
    assert "kata" not in str([a.detail for a in audit_rows()]).lower()


def mirror_props(sandbox: Any) -> dict[str, Any]:
    [mirror] = objects(sandbox, "hubspot", "tickets")
    return mirror["properties"]


def _env(settings: Any) -> dict[str, str]:
    """The environment a `switchboard` command needs to see this test's database and sandbox."""
    env = settings.env
    out = {"DATABASE_URL": env.database_url, "SWITCHBOARD_CONFIG": str(env.switchboard_config)}
    for vendor in ("hubspot", "happyfox", "aircall", "gmail"):
        out[f"{vendor.upper()}_BASE_URL"] = env.base_url(vendor)
    # Base URLs need the credentials with them (Env.check_base_urls): the sandbox's, as a deployment sets its own.
    out.update({name.upper(): value for name, value in SANDBOX_DEFAULTS.items()})
    out["GOOGLE_APPLICATION_CREDENTIALS"] = "none.json"  # never read: the command calls no vendor
    return out


def test_a_founded_complaint_carries_the_measure_deadline_and_responsible(flow, settings):
    run(put_form(purpose="panasz", summary="Késedelmes teljesítés"))
    hf_id = tickets()[0].happyfox_id
    staff = Staff(settings, flow)
    staff.deliver(staff.write(hf_id, outcome="founded", measure="Jóváírás", measure_due_at="2026-12-31",
                              measure_responsible="Pénzügy"))
    c = complaint()
    assert c.notice_due_at is None and c.measure_responsible == "Pénzügy"
    [item] = [i for i in complaint_deadlines.items(datetime(2026, 12, 31, 9, tzinfo=timezone.utc)) if i.kind != "answer"]
    assert (item.kind, item.responsible, item.overdue) == ("measure", "Pénzügy", False)
    assert item.due_at == datetime(2026, 12, 31, 22, 59, 59, tzinfo=timezone.utc)  # the day's end in Budapest


def test_other_categories_get_no_record_and_unreadable_values_are_audited(flow, settings):
    run(put_form(purpose="hibabejelentes"))
    staff = Staff(settings, flow)
    staff.deliver(staff.write(tickets()[0].happyfox_id, loss_amount_huf="500000"))
    with store.session() as s:
        assert s.scalars(select(Complaint)).all() == []
    assert escalations(flow) == []

    run(put_form("other@example.com", purpose="panasz"))
    hf_id = tickets()[1].happyfox_id
    staff.deliver(staff.write(hf_id, loss_amount_huf="sok pénz", event_type="no such type"))
    c = complaint()
    assert c.loss_amount_huf is None and c.event_type is None
    [entry] = [a for a in audit_rows() if a.action == "complaint.unreadable_fields"]
    assert "sok" not in str(entry.detail) and len(entry.detail["problems"]) == 2


def test_a_hubspot_property_change_reaches_the_register_and_escalates(flow, settings):
    run(put_form(purpose="panasz"))
    ticket = tickets()[0]
    event = {"eventId": 91, "subscriptionId": 7, "objectId": int(ticket.hubspot_ticket_id), "portalId": 1,
             "subscriptionType": "ticket.propertyChange", "propertyName": "complaint_loss_amount_huf",
             "propertyValue": "120000", "occurredAt": 1764000000000, "attemptNumber": 0}
    inbox_id = deliver("hubspot", [event], run=False).inbox_id
    assert run(inbox_id) == "done", row(inbox_id).last_error
    assert complaint().loss_amount_huf == 120000 and len(escalations(flow)) == 1
    staff = Staff(settings, flow)
    hf = flow.state("happyfox")["tickets"][str(ticket.happyfox_id)]
    assert hf["custom_fields"][str(staff.fields["Potential loss (HUF)"])] == "120000"  # carried to HappyFox

    # HappyFox's webhook for that write brings the same value back: nothing is written anywhere again.
    flow.clear_calls()
    staff.deliver(staff.http.get(f"/ticket/{ticket.happyfox_id}/").json())
    assert [c for c in flow.calls() if c["method"] != "GET"] == []
    assert run(inbox_id) == "skipped" and len(escalations(flow)) == 1


def test_a_failed_read_is_retried_and_a_failed_escalation_mail_is_sent_once_later(flow, settings):
    run(put_form(purpose="panasz"))
    hf_id = tickets()[0].happyfox_id
    staff = Staff(settings, flow)
    ticket = staff.write(hf_id, loss_amount_huf="150000")
    flow.fault(service="happyfox", method="GET", path=f"/api/1.1/json/ticket/{hf_id}/", status=503, times=10)
    inbox_id = deliver("happyfox", ticket, run=False).inbox_id
    with pytest.raises(Exception):
        run(inbox_id)
    assert row(inbox_id).status == "failed" and complaint().loss_amount_huf is None
    flow.http.delete("/_sandbox/faults").raise_for_status()

    mail = complaint_register.vendors.get().mail
    port, mail.port = mail.port, _closed_port()  # the SMTP server is down
    with pytest.raises(Exception):
        run(inbox_id)
    assert complaint().loss_amount_huf == 150000 and complaint().escalated_at is None
    # The mirror went before the mail: the retry finds nothing changed, yet HubSpot has the loss already.
    hubspot_ticket = flow.state("hubspot")["tickets"][str(tickets()[0].hubspot_ticket_id)]
    assert hubspot_ticket["properties"]["complaint_loss_amount_huf"] == "150000"
    mail.port = port
    assert run(inbox_id) == "done"
    assert len(escalations(flow)) == 1 and complaint().escalated_at is not None
    assert complaint_register.escalate(complaint().id) is False and len(escalations(flow)) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
