"""A stored payload a handler cannot use goes dead at its first attempt, with a reason naming the field path and
never its value; a failure of anything else (a bug deep in a flow, the database) is still retried."""
from __future__ import annotations

import copy
import logging

import pytest
from sqlalchemy.exc import DataError, OperationalError

from core import jobs
from flows import dispatch
from flows.intake import calls

from .flowkit import fixture, put, queue, row, website_form  # noqa: F401 - queue is a fixture

PHONE, EMAIL = "+36 30 123 4567", "kata.kovacs@example.com"


def attempt(queue, inbox_id: int) -> None:
    """One run of the job as a huey worker runs it, with every retry still in hand."""
    task = dispatch.process_inbox.s(inbox_id)
    assert task.retries == jobs.RETRIES
    queue.execute(task)


def aircall(name: str, **data) -> dict:
    payload = fixture(f"webhooks/aircall/fixtures/{name}.json")
    payload.pop("token", None)
    payload["data"].update(data)
    return payload


def happyfox(**ticket) -> dict:
    body = fixture("webhooks/happyfox/fixtures/ticket.updated__wrapped.json")["ticket"]
    return {"ticket_id": body["id"], "ticket": {**body, **ticket}}


def hubspot(name: str, **changes) -> dict:
    [event] = fixture(f"webhooks/hubspot/fixtures/{name}.json")
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


def without(payload: dict, *path: str) -> dict:
    payload = copy.deepcopy(payload)
    parent = payload
    for name in path[:-1]:
        parent = parent[name]
    del parent[path[-1]]
    return payload


BAD = {
    "aircall call without an id": (
        "aircall", "call.ended", without(aircall("call.ended__missed"), "data", "id"), "data.id missing"),
    "aircall voicemail without an id": (
        "aircall", "call.voicemail_left", without(aircall("call.voicemail_left__inbound"), "data", "id"),
        "data.id missing"),
    "aircall call without data": (
        "aircall", "call.ended", without(aircall("call.ended__missed"), "data"), "data missing"),
    "aircall duration as text": (
        "aircall", "call.ended", aircall("call.ended__missed", duration="a minute"), "data.duration int_parsing"),
    "happyfox ticket id not a number": (
        "happyfox", "ticket", {**happyfox(), "ticket_id": "BR00001003"}, "ticket_id int_parsing"),
    "happyfox ticket id overflows 64 bits": (
        "happyfox", "ticket", {**happyfox(), "ticket_id": 10**30}, "ticket_id less_than_equal"),
    "happyfox ticket id a superscript digit": (
        "happyfox", "ticket", {**happyfox(), "ticket_id": "²"}, "ticket_id int_parsing"),
    "hubspot objectId overflows 64 bits": (
        "hubspot", "ticket.propertyChange", hubspot("ticket.propertyChange__stage", objectId=10**30),
        "objectId less_than_equal"),
    "aircall start time beyond any date": (
        "aircall", "call.ended", aircall("call.ended__missed", started_at=10**30), "data.started_at less_than"),
    "happyfox updates not a list": (
        "happyfox", "ticket", happyfox(updates="none"), "ticket.updates list_type"),
    "happyfox ticket not an object": (
        "happyfox", "ticket", {"ticket_id": 1003, "ticket": ["x"]}, "ticket model_type"),
    "hubspot ticket change without objectId": (
        "hubspot", "ticket.propertyChange", hubspot("ticket.propertyChange__stage", objectId=None),
        "objectId missing"),
    "hubspot contact change without objectId": (
        "hubspot", "contact.propertyChange", hubspot("contact.propertyChange__email", objectId=None),
        "objectId missing"),
    "hubspot value not a string": (
        "hubspot", "ticket.propertyChange", hubspot("ticket.propertyChange__stage", propertyValue=4),
        "propertyValue string_type"),
    "form field not text": (
        "form", "form", {**website_form(), "fields": {**website_form()["fields"], "summary": ["x"]}},
        "fields.summary string_type"),
    "form attachment not base64": (
        "form", "form", {**website_form(), "attachments": [{"filename": "a.pdf", "data_b64": "%%%"}]},
        "attachments[0].data_b64 base64"),
    "form no longer configured": (
        "form", "form", {**website_form(), "form": "retired"}, "form not_configured"),
    "manual report without subject": (
        "manual", "manual", {"channel": "post", "email": EMAIL}, "subject missing"),
    "consent withdrawal naming nobody": (
        "admin", "consent.withdrawn", {}, "email_or_phone_required"),
    "erased payload": (
        "aircall", "call.ended", {"erased": 7}, "erased"),
}


@pytest.mark.parametrize("source, kind, payload, problem", BAD.values(), ids=BAD.keys())
def test_an_unusable_payload_is_dead_at_the_first_attempt(queue, sandbox, source, kind, payload, problem):
    inbox_id = put(source, kind, payload)
    attempt(queue, inbox_id)
    dead = row(inbox_id)
    assert (dead.status, dead.attempts) == ("dead", 1)
    assert dead.last_error == f"Permanent: invalid {source} {kind} payload: {problem}"
    assert queue.scheduled_count() == 0  # huey was not asked for a retry
    assert sandbox.calls() == [] and sandbox.mail() == []


def test_the_reason_and_the_log_name_the_field_never_its_value(queue, sandbox, caplog):
    payload = aircall("call.ended__missed", id=None, raw_digits=36301234567,
                      contact={"first_name": "Kata", "emails": [EMAIL]})
    inbox_id = put("aircall", "call.ended", payload)
    with caplog.at_level(logging.DEBUG):
        attempt(queue, inbox_id)
    reason = row(inbox_id).last_error
    assert reason == ("Permanent: invalid aircall call.ended payload: data.id id_type; data.raw_digits string_type; "
                      "data.contact.emails[0] model_type")
    for text in (reason, caplog.text):
        assert "36301234567" not in text and EMAIL not in text and "Kata" not in text


def test_a_valid_payload_still_runs(queue, sandbox):
    inbox_id = put("aircall", "call.ended", aircall("call.ended__answered_inbound"))
    attempt(queue, inbox_id)
    assert row(inbox_id).status == "done"


@pytest.mark.parametrize("error", [KeyError("contact"), TypeError("unhashable"),
                                   OperationalError("SELECT 1", {}, Exception("database is locked"))],
                         ids=["KeyError", "TypeError", "OperationalError"])
def test_a_failure_inside_the_flow_is_still_retried(queue, sandbox, monkeypatch, error):
    def broken(*args, **kwargs):
        raise error
    monkeypatch.setattr(calls, "_caller", broken)  # past the payload check: our bug, or the database
    inbox_id = put("aircall", "call.ended", aircall("call.ended__missed"))
    attempt(queue, inbox_id)
    failed = row(inbox_id)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 1, type(error).__name__)
    assert queue.scheduled_count() == 1


@pytest.mark.parametrize("error", [OverflowError("Python int too large to convert to SQLite INTEGER"),
                                   DataError("SELECT 1", {}, Exception("integer out of range"))],
                         ids=["OverflowError", "DataError"])
def test_data_that_can_never_fit_is_dead_at_once(queue, sandbox, monkeypatch, error):
    def overflowing(*args, **kwargs):
        raise error
    monkeypatch.setattr(calls, "_caller", overflowing)  # as a lookup of a 10^30 id fails, whatever the engine
    inbox_id = put("aircall", "call.ended", aircall("call.ended__missed"))
    attempt(queue, inbox_id)
    dead = row(inbox_id)
    assert (dead.status, dead.attempts, dead.last_error) == ("dead", 1, type(error).__name__)
    assert queue.scheduled_count() == 0  # never retried


def test_a_vendor_refusal_is_dead_at_once(queue, sandbox):
    sandbox.fault(service="hubspot", method="POST", path="/crm/v3/*", status=400, times=100)
    inbox_id = put("aircall", "call.ended", aircall("call.ended__answered_inbound"))
    attempt(queue, inbox_id)
    assert row(inbox_id).status == "dead" and row(inbox_id).last_error == "InvalidRequest: hubspot HTTP 400"
    assert queue.scheduled_count() == 0


def test_a_vendor_outage_is_still_retried(queue, sandbox):
    sandbox.fault(service="hubspot", method="POST", path="/crm/v3/*", status=503, times=100)
    inbox_id = put("aircall", "call.ended", aircall("call.ended__answered_inbound"))
    attempt(queue, inbox_id)
    assert row(inbox_id).status == "failed" and row(inbox_id).last_error == "Unavailable: hubspot HTTP 503"
    assert queue.scheduled_count() == 1
