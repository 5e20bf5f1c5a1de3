"""Rectification reaching Aircall over the sandbox: an email or phone corrected in HubSpot or HappyFox replaces the
old value on each Aircall contact linked to the customer (in place, same detail id), once; an outage of the
detail endpoint leaves the event retryable; a customer without an Aircall contact costs no Aircall call; a
verified rectification request lists Aircall beside the other systems in its record and its completion mail."""
from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core import store
from core.models import Audit, InboxEvent, Ticket
from flows import identity, inbox
from flows.privacy import requests
from sandbox.aircall import simulate_call

from .delivery import deliver
from .flowkit import fast_vendors, put_form, run
from .test_rectification import contact_event

EMAIL = "regi.cim@example.com"
NEW_EMAIL = "uj.cim@example.com"
PHONE = "+36 30 123 4567"  # as Aircall shows it
NEW_PHONE = "+36209876543"


def aircall_contact(sandbox: Any, contact_id: int) -> dict[str, Any]:
    """The contact as the fake's API answers it, over HTTP."""
    creds = sandbox.credentials
    answer = httpx.get(f"{sandbox.base_url}/v1/contacts/{contact_id}", timeout=10,
                       auth=(creds["aircall_api_id"], creds["aircall_api_token"]))
    answer.raise_for_status()
    contact: dict[str, Any] = answer.json()["contact"]
    return contact


def aircall_calls(sandbox: Any) -> list[tuple[str, str, int]]:
    return [(c["method"], c["path"], c["status"]) for c in sandbox.calls() if c["service"] == "aircall"]


def caller(sandbox: Any) -> tuple[int, str, int]:
    """(customer id, HubSpot contact id, Aircall contact id) of a form sender who then called from a number with a
    shared Aircall contact, linked to them by the call flow."""
    contact = fast_vendors().aircall.create_contact("Kata", "Kovács", emails=[EMAIL], phones=[PHONE])
    assert run(put_form(EMAIL)) == "done"
    call = simulate_call(sandbox.running.sandbox, "inbound", PHONE, 60)
    assert deliver("aircall", {"resource": "call", "event": "call.ended", "timestamp": call["ended_at"],
                               "data": call}).outcome == "done"
    with store.session() as s:
        [customer] = identity.find(s, email=EMAIL)
        assert identity.values_of(s, customer.id, "aircall") == [contact.id]
        return customer.id, identity.value_of(s, customer.id, "hubspot") or "", int(contact.id)


def digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def test_an_email_corrected_in_hubspot_replaces_the_aircall_email_once(flow):
    customer_id, contact, aircall_id = caller(flow)
    [before] = aircall_contact(flow, aircall_id)["emails"]
    flow.clear_calls()
    assert contact_event("contact.propertyChange", contact, propertyName="email", propertyValue=NEW_EMAIL) == "done"
    [after] = aircall_contact(flow, aircall_id)["emails"]
    assert (after["id"], after["label"], after["value"]) == (before["id"], before["label"], NEW_EMAIL)
    assert [(m, p) for m, p, _ in aircall_calls(flow) if m != "GET"] == [
        ("PUT", f"/v1/contacts/{aircall_id}/email_details/{before['id']}")]
    with store.session() as s:
        written = s.scalars(select(Audit).where(Audit.action == "rectification.written")).all()
    assert [(a.detail["processor"], a.detail["system"], a.detail["how"]) for a in written
            if a.detail["processor"] == "aircall"] == [("aircall", "email", "replaced")]
    assert {a.detail["processor"] for a in written} == {"aircall", "happyfox"}  # the same trail for every system
    assert "@" not in json.dumps([a.detail for a in written])

    # The same event again (HubSpot's echo, or a duplicate delivery): no Aircall call at all.
    flow.clear_calls()
    assert contact_event("contact.propertyChange", contact, propertyName="email", propertyValue=NEW_EMAIL) == "done"
    assert aircall_calls(flow) == []
    # Carried again by hand (what a retry does): read, nothing written, still one email.
    from flows.privacy import rectification
    assert rectification.reach_aircall(customer_id, ["email"], "hubspot") == 0
    assert [m for m, _, _ in aircall_calls(flow)] == ["GET"]
    assert len(aircall_contact(flow, aircall_id)["emails"]) == 1


def test_a_phone_corrected_in_hubspot_replaces_the_aircall_number(flow):
    customer_id, contact, aircall_id = caller(flow)
    [before] = aircall_contact(flow, aircall_id)["phone_numbers"]
    assert contact_event("contact.propertyChange", contact, propertyName="mobilephone",
                         propertyValue="06 20 987 6543") == "done"
    [after] = aircall_contact(flow, aircall_id)["phone_numbers"]  # replaced, not added: one number still
    assert after["id"] == before["id"] and digits(after["value"]) == digits(NEW_PHONE)
    with store.session() as s:
        assert identity.values_of(s, customer_id, "phone")[:2] == [NEW_PHONE, "+36301234567"]


def test_an_aircall_outage_on_the_detail_endpoint_leaves_the_event_retryable(flow):
    customer_id, contact, aircall_id = caller(flow)
    [email] = aircall_contact(flow, aircall_id)["emails"]
    path = f"/v1/contacts/{aircall_id}/email_details/{email['id']}"
    flow.fault(service="aircall", method="PUT", path=path, status=503, times=50)
    with pytest.raises(Exception, match="aircall"):
        contact_event("contact.propertyChange", contact, propertyName="email", propertyValue=NEW_EMAIL)
    assert aircall_contact(flow, aircall_id)["emails"][0]["value"] == EMAIL
    flow.http.delete("/_sandbox/faults").raise_for_status()
    with store.session() as s:
        assert identity.value_of(s, customer_id, "email") == NEW_EMAIL  # ours changed already
        failed = s.scalars(select(InboxEvent.id).where(InboxEvent.status.in_(("failed", "dead")))).all()
    assert failed
    inbox.replay(list(failed))
    assert [run(i) for i in failed] == ["done"] * len(failed)
    assert [e["value"] for e in aircall_contact(flow, aircall_id)["emails"]] == [NEW_EMAIL]  # no duplicate

    # A 429 whose reset is further off than a worker waits inline: the event fails retryably (not dead), and
    # its retry carries the number.
    flow.clear_calls()
    [number] = aircall_contact(flow, aircall_id)["phone_numbers"]
    flow.fault(service="aircall", method="PUT", path=f"/v1/contacts/{aircall_id}/phone_details/{number['id']}",
               status=429, times=1)
    with pytest.raises(Exception, match="429"):
        contact_event("contact.propertyChange", contact, propertyName="phone", propertyValue=NEW_PHONE)
    with store.session() as s:
        [limited] = s.scalars(select(InboxEvent).where(InboxEvent.status.in_(("failed", "dead")))).all()
        limited_id, status = limited.id, limited.status
    assert status == "failed"
    inbox.replay([limited_id])
    assert run(limited_id) == "done"
    assert [s for m, _, s in aircall_calls(flow) if m == "PUT"] == [429, 200]
    [replaced] = aircall_contact(flow, aircall_id)["phone_numbers"]
    assert replaced["id"] == number["id"] and digits(replaced["value"]) == digits(NEW_PHONE)


def test_a_customer_without_an_aircall_contact_costs_no_aircall_call(flow):
    assert run(put_form(EMAIL)) == "done"
    with store.session() as s:
        [customer] = identity.find(s, email=EMAIL)
        contact = identity.value_of(s, customer.id, "hubspot") or ""
    flow.clear_calls()
    assert contact_event("contact.propertyChange", contact, propertyName="email", propertyValue=NEW_EMAIL) == "done"
    assert aircall_calls(flow) == []


def test_an_email_corrected_on_the_happyfox_contact_reaches_aircall(flow):
    customer_id, _, aircall_id = caller(flow)
    happyfox = fast_vendors().happyfox
    with store.session() as s:
        user_id = identity.value_of(s, customer_id, "happyfox")
        happyfox_id = s.scalar(select(Ticket.happyfox_id).where(Ticket.customer_id == customer_id))
    assert user_id and happyfox_id
    happyfox.update_user(user_id, email=NEW_EMAIL)
    assert deliver("happyfox", happyfox.get_ticket(happyfox_id).raw).outcome == "done"
    assert [e["value"] for e in aircall_contact(flow, aircall_id)["emails"]] == [NEW_EMAIL]


def test_a_verified_rectification_request_names_aircall_in_its_record_and_receipt(flow):
    customer_id, contact, aircall_id = caller(flow)
    request_id = requests.add("rectification", email=EMAIL, channel="staff", actor="cli", language="en")
    requests.verify(request_id, "dpo@example.com", "id_document")
    # Staff correct the address in HubSpot; the flows carry it everywhere and note each system on the request.
    assert contact_event("contact.propertyChange", contact, propertyName="email", propertyValue=NEW_EMAIL) == "done"
    outcome = requests.detail(request_id)["outcome"]
    assert outcome["processors"] == {"hubspot": {"email": 1}, "switchboard": {"email": 1},
                                     "happyfox": {"email": 1}, "aircall": {"email": 1}}
    assert contact_event("contact.propertyChange", contact, propertyName="email", propertyValue=NEW_EMAIL) == "done"
    assert requests.detail(request_id)["outcome"]["processors"] == outcome["processors"]  # nothing new written
    for task in requests.tasks(request_id):
        requests.confirm_task(request_id, task["processor"], "ops@example.com")
    requests.complete(request_id, "Email corrected in HubSpot", actor="cli")
    [told] = [m for m in flow.mail() if EMAIL in m["to"] and "Aircall" in m["text"]]
    assert "Aircall (phone service): corrected" in told["text"] and "HappyFox (help desk): corrected" in told["text"]
