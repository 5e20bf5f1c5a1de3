"""The mailbox channel: HappyFox makes a ticket from a mail to the support address and tells us through its smart
rule; Switchboard links it to the customer and mirrors it like a form's. A ticket Switchboard made itself (the
sandbox echoes those back, as HappyFox does) is recognised by its key and never mirrored twice."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from core import store
from core.models import InboxEvent
from webhooks.app import create_app

from .flowkit import customers, fast_vendors, fixture, identities, objects, put_form, row, run, tickets, writes


@pytest.fixture
def app_client(settings):
    return create_app(settings).test_client()


def hook(client, settings, ticket: dict) -> int:
    answer = client.post("/webhooks/happyfox", query_string={"token": settings.env.secret("happyfox_webhook_secret")},
                         json=ticket)
    assert answer.status_code in (200, 202), answer.get_json()
    return int(answer.get_json()["id"])


def mailbox_ticket(flow, email: str = "levelezo@example.com") -> dict:
    """A ticket as HappyFox makes it from an email: no Switchboard key on it."""
    v = fast_vendors()
    ticket = v.happyfox.create_ticket(subject="Nem tudok belépni", text="Levélben írom: hiba van.", category=6,
                                      email=email, name="Levelező Lili").raw
    flow.clear_calls()
    return ticket


def test_a_mailbox_ticket_is_linked_and_mirrored_once(flow, settings, app_client):
    made = mailbox_ticket(flow)
    inbox_id = hook(app_client, settings, made)
    assert run(inbox_id) == "done"
    assert writes(flow) == [("happyfox", "GET", f"/api/1.1/json/ticket/{made['id']}/"),
                            ("hubspot", "POST", "/crm/v3/objects/contacts/batch/upsert"),
                            ("hubspot", "POST", "/crm/v3/objects/tickets"),
                            ("hubspot", "POST", "/crm/v3/objects/emails")]  # the confirmation, on the ticket
    [contact] = objects(flow, "hubspot", "contacts")
    [mirror] = objects(flow, "hubspot", "tickets")
    assert contact["properties"]["email"] == "levelezo@example.com"
    assert mirror["properties"]["subject"].startswith(made["display_id"])
    assert mirror["properties"]["hs_ticket_category"] == "GENERAL_INQUIRY"
    assert [a for a in flow.state("hubspot")["associations"] if a["typeId"] == 16] == [
        {"from": ["tickets", mirror["id"]], "to": ["contacts", contact["id"]], "typeId": 16}]
    assert len(flow.state("happyfox")["tickets"]) == 1  # HappyFox made it; we made none

    [ticket] = tickets()
    assert ticket.channel == "email" and ticket.source_key == f"happyfox:{made['id']}"
    assert ticket.happyfox_id == made["id"] and ticket.hubspot_ticket_id == mirror["id"]
    assert ticket.category == "felhasznaloi_tamogatas" and ticket.told_id == made["display_id"]
    [mail] = flow.mail()
    assert mail["to"] == ["levelezo@example.com"] and made["display_id"] in mail["subject"]
    [customer] = customers()
    assert identities(customer.id)["happyfox"] == [str(made["user"]["id"])]
    assert (customer.first_name, customer.last_name) == ("Lili", "Levelező")

    # The same change delivered again is not stored again; a later change of the ticket costs no call.
    flow.clear_calls()
    assert hook(app_client, settings, made) == inbox_id
    later = fast_vendors().happyfox.update_ticket(made["id"], 1, private_note="megnéztük").raw
    flow.clear_calls()
    update_id = hook(app_client, settings, later)
    assert update_id != inbox_id and run(update_id) == "done"
    assert writes(flow) == []
    assert len(objects(flow, "hubspot", "tickets")) == 1 and len(flow.mail()) == 1


def test_an_email_from_a_known_customer_joins_them(flow, settings, app_client):
    run(put_form("levelezo@example.com"))
    [customer] = customers()
    made = mailbox_ticket(flow, "Levelezo@Example.com")
    run(hook(app_client, settings, made))
    assert [c.id for c in customers()] == [customer.id]
    assert len(objects(flow, "hubspot", "contacts")) == 1
    assert len(objects(flow, "hubspot", "tickets")) == 2
    assert {t.customer_id for t in tickets()} == {customer.id}


def test_our_own_ticket_echoed_by_happyfox_is_not_mirrored_again(flow, settings):
    """The sandbox's HappyFox sends ticket.created back for the ticket the form intake made, over real HTTP."""
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    flow.running.sandbox.webhook_url = f"http://127.0.0.1:{server.server_port}"
    try:
        form_id = put_form("echo@example.com")
        run(form_id)
        flow.wait_idle()  # HappyFox's webhooks for the intake's writes are in
        [echo] = echoes()
        flow.clear_calls()
        assert run(echo) == "done"
        assert writes(flow) == []  # recognised by the key on the hint: not even re-read
    finally:
        server.shutdown()
    assert len(objects(flow, "hubspot", "tickets")) == 1 and len(flow.mail()) == 1 and len(tickets()) == 1
    assert row(form_id).status == "done"


def echoes() -> list[int]:
    with store.session() as s:
        return list(s.scalars(select(InboxEvent.id).where(InboxEvent.source == "happyfox")))


def test_a_hint_without_our_key_is_checked_against_the_ticket_itself(flow, settings, app_client):
    """A smart rule may post a bare ticket; the re-read shows the key, and nothing is mirrored twice."""
    run(put_form("hint@example.com"))
    [ours] = flow.state("happyfox")["tickets"].values()
    flow.clear_calls()
    hint = {"id": ours["id"], "last_modified": "2026-11-24 10:00:00", "subject": "x"}
    assert run(hook(app_client, settings, hint)) == "done"
    assert writes(flow) == []  # known by its HappyFox id
    assert len(objects(flow, "hubspot", "tickets")) == 1


def test_the_documented_fixture_of_our_own_ticket_costs_nothing(flow, settings, app_client):
    ticket = fixture("webhooks/happyfox/fixtures/ticket.created__plain.json")
    flow.clear_calls()
    assert run(hook(app_client, settings, ticket)) == "done"
    assert writes(flow) == [] and tickets() == []


def test_a_customer_reply_on_a_known_ticket_counts_as_activity(flow, settings, app_client):
    run(put_form("valaszol@example.com"))
    [ours] = flow.state("happyfox")["tickets"].values()
    [before] = customers()
    reply = {"id": ours["id"], "last_modified": "2030-01-02 10:00:00", "custom_fields": ours_fields(ours),
             "updates": [{"update_id": 1, "timestamp": "2030-01-01 09:00:00", "by": {"type": "staff"}},
                         {"update_id": 9, "timestamp": "2030-01-02 10:00:00", "by": {"type": "user"}}]}
    flow.clear_calls()
    assert run(hook(app_client, settings, reply)) == "done"
    [after] = customers()
    assert after.last_activity_at.isoformat().startswith("2030-01-02T10:00:00")
    assert after.last_activity_at > before.last_activity_at and writes(flow) == []
    staff_only = {**reply, "last_modified": "2030-02-01 10:00:00",
                  "updates": [{"update_id": 10, "timestamp": "2030-02-01 10:00:00", "by": {"type": "staff"}}]}
    run(hook(app_client, settings, staff_only))
    assert customers()[0].last_activity_at == after.last_activity_at


def ours_fields(ticket: dict) -> list[dict]:
    return [{"id": int(k), "name": "switchboard_key" if k == "1" else "Service area", "value": v}
            for k, v in ticket["custom_fields"].items()]


def test_a_ticket_answer_of_the_wrong_shape_fails_the_event_at_once_naming_the_field(flow, settings, app_client):
    """A vendor answer that does not parse (connectors/records.py) is permanent: retrying gets the same answer. The
    reason names the field path and the error type, never the value."""
    made = mailbox_ticket(flow)
    running = flow.running.sandbox
    with running.lock:
        running.state["happyfox"]["tickets"][made["id"]]["subject"] = ["Titkos Tárgy"]  # a list where text belongs
    inbox_id = hook(app_client, settings, {"id": made["id"]})
    assert run(inbox_id) == "dead"
    assert row(inbox_id).last_error == "BadAnswer: happyfox: unexpected HappyFoxTicket: subject string_type"
    assert tickets() == [] and writes(flow) == [("happyfox", "GET", f"/api/1.1/json/ticket/{made['id']}/")]
