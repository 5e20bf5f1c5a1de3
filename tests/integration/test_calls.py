"""The phone channel over the sandbox: every Aircall call is logged as a HubSpot call on the right contact
(direction, duration, agent, recording); a missed call or a voicemail opens one ticket like the form does."""
from __future__ import annotations

import copy

import pytest

from core import settings as settings_module

from .delivery import deliver
from .flowkit import (crash_once_recording, customers, fast_vendors, fixture, identities, objects, race, row,
                      run, tickets, writes)


def aircall(name: str, **changes) -> dict:
    payload = fixture(f"webhooks/aircall/fixtures/{name}.json")
    payload.pop("token", None)  # the receiver does not store it
    payload["data"].update(changes)
    return payload


def store(payload: dict) -> int:
    """The webhook through the receiver; the inbox id of what it stored (the test runs the job)."""
    return deliver("aircall", payload, run=False).inbox_id


def calls_on(sandbox, kind: str, target: str) -> list[str]:
    type_id = {"contacts": 194, "tickets": 220}[kind]
    return [a["to"][1] for a in sandbox.state("hubspot")["associations"]
            if a["typeId"] == type_id and a["to"][0] == kind and a["from"][0] == "calls" and target in (a["to"][1],)]


def test_an_answered_call_is_logged_on_the_contact_without_a_ticket(flow):
    inbox_id = store(aircall("call.ended__answered_inbound"))
    assert run(inbox_id) == "done"
    [contact] = objects(flow, "hubspot", "contacts")
    [call] = objects(flow, "hubspot", "calls")
    props = call["properties"]
    assert contact["properties"]["email"] == "kata.kovacs@example.com"
    assert contact["properties"]["phone"] == "+36301234567"
    assert props["hs_call_direction"] == "INBOUND" and props["hs_call_duration"] == "335000"
    assert props["hs_call_status"] == "COMPLETED"
    assert props["hs_call_recording_url"].startswith("https://aircall-recordings")
    assert "Anna Agent" in props["hs_call_body"] and "assets.aircall.io/recording/1002" in props["hs_call_body"]
    assert props["hs_call_from_number"] == "+36301234567" and props["hs_call_to_number"] == "+3612345678"
    assert props["hs_timestamp"].startswith("2024-11-26T")
    assert calls_on(flow, "contacts", contact["id"]) == [contact["id"]]
    assert tickets() == [] and flow.mail() == [] and flow.state("happyfox")["tickets"] == {}
    [customer] = customers()
    assert identities(customer.id) == {"phone": ["+36301234567"], "email": ["kata.kovacs@example.com"],
                                       "aircall": ["789012"], "hubspot": [contact["id"]]}

    flow.clear_calls()  # the same job again: nothing
    assert run(inbox_id) == "skipped" and writes(flow) == []


def test_a_missed_call_opens_a_ticket_and_the_call_is_on_contact_and_ticket(flow):
    run(store(aircall("call.ended__missed")))
    [hf] = flow.state("happyfox")["tickets"].values()
    [mirror] = objects(flow, "hubspot", "tickets")
    [contact] = objects(flow, "hubspot", "contacts")
    [call] = objects(flow, "hubspot", "calls")
    assert call["properties"]["hs_call_status"] == "MISSED"
    assert calls_on(flow, "contacts", contact["id"]) == [contact["id"]]
    assert calls_on(flow, "tickets", mirror["id"]) == [mirror["id"]]
    [ticket] = tickets()
    assert ticket.channel == "phone" and ticket.source_key == "aircall-call:1003"
    assert ticket.happyfox_id == hf["id"] and ticket.hubspot_ticket_id == mirror["id"]
    assert "Nem fogadott hívás" in hf["subject"] and "agents_did_not_answer" in hf["first_message"]
    [mail] = flow.mail()
    assert mail["to"] == ["kata.kovacs@example.com"] and hf["display_id"] in mail["subject"]


def test_missed_call_tickets_can_be_switched_off(flow):
    loaded = settings_module.get()
    intake = loaded.config.intake.model_copy(update={"ticket_on_missed_call": False})
    settings_module.use(loaded.model_copy(update={"config": loaded.config.model_copy(update={"intake": intake})}))
    fast_vendors()
    run(store(aircall("call.ended__missed")))
    assert tickets() == [] and flow.state("happyfox")["tickets"] == {}
    assert len(objects(flow, "hubspot", "calls")) == 1


def test_a_voicemail_opens_one_ticket_whichever_event_comes_first(flow):
    left = aircall("call.voicemail_left__inbound")
    ended = copy.deepcopy(left)
    ended["event"] = "call.ended"
    run(store(left))
    run(store(ended))
    [hf] = flow.state("happyfox")["tickets"].values()
    assert "Hangüzenet" in hf["subject"]
    assert len(tickets()) == 1 and len(objects(flow, "hubspot", "tickets")) == 1 and len(flow.mail()) == 1
    [call] = objects(flow, "hubspot", "calls")
    assert call["properties"]["hs_call_recording_url"].startswith("https://aircall-voicemails")


def test_a_caller_we_do_not_know_gets_a_contact_by_phone_and_a_ticket_without_mail(flow):
    payload = aircall("call.ended__missed", contact=None, raw_digits="06 20 999 8877")
    run(store(payload))
    [contact] = objects(flow, "hubspot", "contacts")
    assert contact["properties"]["phone"] == "+36209998877" and "email" not in contact["properties"]
    [hf] = flow.state("happyfox")["tickets"].values()
    user = flow.state("happyfox")["users"][str(hf["user"])]
    assert [p["number"] for p in user["phones"]] == ["+36209998877"]
    assert flow.mail() == []
    [ticket] = tickets()
    assert ticket.confirmed_at is None and ticket.hubspot_ticket_id is not None
    # The next call from the number lands on the same contact without a search (and on the open ticket).
    flow.clear_calls()
    run(store(aircall("call.ended__answered_inbound", id=2001, contact=None, raw_digits="+36209998877")))
    assert writes(flow) == [("happyfox", "POST", f"/api/1.1/json/ticket/{hf['id']}/staff_pvtnote/"),
                            ("hubspot", "POST", "/crm/v3/objects/calls")]
    assert len(objects(flow, "hubspot", "contacts")) == 1


def test_an_outbound_call_is_logged_from_our_number(flow):
    run(store(aircall("call.ended__answered_inbound", id=3001, direction="outbound")))
    [call] = objects(flow, "hubspot", "calls")
    assert call["properties"]["hs_call_direction"] == "OUTBOUND"
    assert call["properties"]["hs_call_from_number"] == "+3612345678"
    assert call["properties"]["hs_call_to_number"] == "+36301234567"
    assert tickets() == []


def test_an_answered_call_from_a_hidden_number_is_audited_and_writes_nothing(flow):
    inbox_id = store(aircall("call.ended__answered_inbound", contact=None, raw_digits="anonymous"))
    flow.clear_calls()
    assert run(inbox_id) == "done"
    assert writes(flow) == [] and customers() == [] and tickets() == []


def test_a_missed_call_from_a_hidden_number_opens_a_ticket_marked_so_without_a_customer(flow):
    inbox_id = store(aircall("call.ended__missed", contact=None, raw_digits="anonymous"))
    assert run(inbox_id) == "done"
    [hf] = flow.state("happyfox")["tickets"].values()
    assert hf["subject"] == "Nem fogadott hívás (rejtett szám)" and "rejtett szám" in hf["first_message"]
    [ticket] = tickets()
    assert ticket.customer_id is None and ticket.channel == "phone" and ticket.hubspot_ticket_id is not None
    assert customers() == [] and objects(flow, "hubspot", "contacts") == [] and flow.mail() == []
    assert objects(flow, "hubspot", "calls") == []  # no contact to log it on: the ticket is the record
    flow.clear_calls()
    assert run(inbox_id) == "skipped" and writes(flow) == []


def test_a_crash_after_the_call_is_logged_does_not_log_it_twice(flow, monkeypatch):
    crash_once_recording(monkeypatch, "hubspot-call:")
    inbox_id = store(aircall("call.ended__answered_inbound"))
    with pytest.raises(RuntimeError):
        run(inbox_id)
    assert row(inbox_id).status == "failed"
    assert run(inbox_id) == "done"
    assert len(objects(flow, "hubspot", "calls")) == 1 and len(objects(flow, "hubspot", "contacts")) == 1


# ---------------------------------------------------------------- events of one caller at the same moment

def loser(outcomes: dict) -> int:
    """The one racing job that did not finish: it failed transiently (its retry is the job queue's), having
    written nothing."""
    assert sorted(o if isinstance(o, str) else "raised" for o in outcomes.values()) == ["done", "raised"], outcomes
    [inbox_id] = [i for i, o in outcomes.items() if not isinstance(o, str)]
    assert row(inbox_id).status == "failed"
    return inbox_id


def test_a_voicemail_and_its_call_ended_at_the_same_moment_open_one_ticket(any_database, sandbox):
    fast_vendors()
    left = aircall("call.voicemail_left__inbound")
    ended = copy.deepcopy(left)
    ended["event"] = "call.ended"
    ids = [store(left), store(ended)]
    # Every HappyFox create is held for a second: the two jobs are inside the write at the same time.
    sandbox.fault(service="happyfox", method="POST", path="/api/1.1/json/tickets/", delay=1.0, times=2)

    retried = loser(race(*ids))
    assert len(sandbox.state("happyfox")["tickets"]) == 1
    assert run(retried) == "done"  # the queue's retry finds the ticket the other job made

    assert len(sandbox.state("happyfox")["tickets"]) == 1 and len(tickets()) == 1
    assert len(objects(sandbox, "hubspot", "tickets")) == 1 and len(sandbox.mail()) == 1
    assert len(objects(sandbox, "hubspot", "calls")) == 1 and len(objects(sandbox, "hubspot", "contacts")) == 1


def test_two_calls_from_one_new_number_at_the_same_moment_make_one_contact(any_database, sandbox):
    fast_vendors()
    ids = [store(aircall("call.ended__answered_inbound", id=2001, contact=None, raw_digits="06 20 999 8877")),
           store(aircall("call.ended__answered_inbound", id=2002, contact=None, raw_digits="+36 20 999 8877"))]
    # The phone search before the create is held for a second: both jobs are inside the write at once.
    sandbox.fault(service="hubspot", method="POST", path="/crm/v3/objects/contacts/search", delay=1.0, times=2)

    retried = loser(race(*ids))
    assert run(retried) == "done"

    [contact] = objects(sandbox, "hubspot", "contacts")
    assert contact["properties"]["phone"] == "+36209998877"
    assert len(objects(sandbox, "hubspot", "calls")) == 2
    assert calls_on(sandbox, "contacts", contact["id"]) == [contact["id"]] * 2
    [customer] = customers()
    assert identities(customer.id)["hubspot"] == [contact["id"]]
