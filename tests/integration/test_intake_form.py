"""The form channel over the sandbox: a submission becomes one HappyFox ticket, one HubSpot contact, one mirrored
HubSpot ticket associated to it and one confirmation mail carrying the display id; 3 outbound calls the first
time, none for a repeat; faults end failed (retried) or dead (replayable)."""
from __future__ import annotations

import io
import json

import pytest

from core import settings as settings_module
from flows import dispatch, inbox
from webhooks.app import create_app

from .flowkit import (audit_actions, audit_rows, crash_once_recording, customers, fast_vendors, identities, objects,
                      put, put_form, row, run, signed, tickets, website_form, writes)


def test_a_form_becomes_one_ticket_contact_mirror_and_mail(flow):
    inbox_id = put_form("Kata.Kovacs@Example.com ")
    assert run(inbox_id) == "done"

    [hf] = flow.state("happyfox")["tickets"].values()
    [contact] = objects(flow, "hubspot", "contacts")
    [mirror] = objects(flow, "hubspot", "tickets")
    assert contact["properties"]["email"] == "kata.kovacs@example.com"
    assert contact["properties"]["firstname"] == "Kata" and contact["properties"]["lastname"] == "Kovács"
    assert mirror["properties"]["switchboard_key"] == f"hubspot-ticket:inbox:{inbox_id}"
    assert mirror["properties"]["hs_ticket_category"] == "PRODUCT_ISSUE"
    assert hf["category"] == 3 and hf["custom_fields"]["1"] == f"happyfox-ticket:inbox:{inbox_id}"
    assert hf["custom_fields"]["2"] == "Crossec Norma"  # the service area, mapped from YAML
    links = [a for a in flow.state("hubspot")["associations"] if a["typeId"] == 16]
    assert links == [{"from": ["tickets", mirror["id"]], "to": ["contacts", contact["id"]], "typeId": 16}]

    [ticket] = tickets()
    assert ticket.happyfox_id == hf["id"] and ticket.happyfox_display_id == hf["display_id"]
    assert ticket.hubspot_ticket_id == mirror["id"] and ticket.told_id == hf["display_id"]
    assert ticket.channel == "form" and ticket.category == "hibabejelentes" and ticket.service_area == "Crossec Norma"
    assert ticket.confirmed_at is not None and ticket.confirm_due_at > ticket.opened_at
    assert mirror["properties"]["subject"].startswith(hf["display_id"])

    [mail] = flow.mail()
    assert mail["to"] == ["kata.kovacs@example.com"]
    assert hf["display_id"] in mail["subject"] and hf["display_id"] in mail["text"]

    [customer] = customers()
    assert customer.id == ticket.customer_id
    known = identities(customer.id)
    assert known["email"] == ["kata.kovacs@example.com"]
    assert known["hubspot"] == [contact["id"]] and known["happyfox"] == [str(hf["user"])]
    assert row(inbox_id).status == "done" and row(inbox_id).attempts == 1
    actions = audit_actions()
    for action in ("customer.created", "ticket.registered", "happyfox.ticket_created", "hubspot.ticket_mirrored",
                   "ticket.confirmed"):
        assert actions.count(action) == 1, action
    assert "kata" not in json.dumps([a.detail for a in audit_rows()]).lower()  # hashes and ids only


def test_four_outbound_calls_per_form_and_none_for_a_repeat(flow):
    run(put_form("first@example.com"))  # warms the one-off discovery of the HappyFox custom field ids
    flow.clear_calls()
    second = put_form("second@example.com")
    run(second)
    assert writes(flow) == [("happyfox", "POST", "/api/1.1/json/tickets/"),
                            ("hubspot", "POST", "/crm/v3/objects/contacts/batch/upsert"),
                            ("hubspot", "POST", "/crm/v3/objects/tickets"),
                            ("hubspot", "POST", "/crm/v3/objects/emails")]  # the confirmation, on the ticket
    flow.clear_calls()
    assert run(second) == "skipped"
    assert writes(flow) == []
    assert len(flow.mail()) == 2


def test_a_repeated_delivery_is_stored_once_and_costs_no_call(flow, settings):
    client = create_app(settings).test_client()
    raw, headers = signed(settings.env.secret("form_webhook_secret"),
                          {"form": "website", "fields": {"vezeteknev": "Kovács", "keresztnev": "Kata",
                                                         "email": "kata@example.com", "cel": "szamlazas",
                                                         "termek": "Crossec Norma", "rovid_leiras": "Számla"}})
    first = client.post("/webhooks/form", data=raw, headers=headers)
    assert first.status_code == 202
    inbox_id = int(first.get_json()["id"])
    run(inbox_id)
    flow.clear_calls()
    again = client.post("/webhooks/form", data=raw, headers=headers)
    assert again.status_code == 200 and again.get_json()["id"] == str(inbox_id)
    assert run(inbox_id) == "skipped"
    assert writes(flow) == []
    assert len(objects(flow, "hubspot", "tickets")) == 1 and len(flow.mail()) == 1
    assert tickets()[0].category == "szamlazas"


def test_attachments_are_forwarded_to_happyfox(flow, settings):
    client = create_app(settings).test_client()
    from standardwebhooks import Webhook  # multipart is signed over the raw body like JSON
    import time
    import uuid
    from datetime import datetime, timezone
    from werkzeug.test import EnvironBuilder
    builder = EnvironBuilder(method="POST", data={
        "form": "website", "vezeteknev": "Kovács", "keresztnev": "Kata", "email": "kata@example.com",
        "cel": "hibabejelentes", "termek": "Crossec Norma", "rovid_leiras": "Hiba", "fajl": (io.BytesIO(b"%PDF-1.4 x"),
                                                                                    "hiba.pdf", "application/pdf")})
    environ = builder.get_environ()
    body, content_type = environ["wsgi.input"].read(), environ["CONTENT_TYPE"]
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    signature = Webhook(settings.env.secret("form_webhook_secret")).sign(
        msg_id, datetime.fromtimestamp(stamp, timezone.utc), body.decode("utf-8"))
    answer = client.post("/webhooks/form", data=body, content_type=content_type, headers={
        "webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature})
    assert answer.status_code == 202, answer.get_json()
    run(int(answer.get_json()["id"]))
    [hf] = flow.state("happyfox")["tickets"].values()
    files = [f for update in hf["updates"] if update["message"] for f in update["message"]["attachments"]]
    assert [(f["filename"], f["size"]) for f in files] == [("hiba.pdf", 10)]


def test_the_product_form_splits_the_name_and_takes_the_default_category(flow):
    inbox_id = put("form", "form", {"form": "product", "fields": {"name": "Kovács Kata", "email": "k@example.com",
                                                                  "summary": "Kérdés", "details": "Hogyan?"},
                                    "attachments": []})
    run(inbox_id)
    [contact] = objects(flow, "hubspot", "contacts")
    assert (contact["properties"]["firstname"], contact["properties"]["lastname"]) == ("Kata", "Kovács")
    assert tickets()[0].category == "egyeb"
    [hf] = flow.state("happyfox")["tickets"].values()
    assert hf["category"] == 2


def test_a_429_is_retried_inline_without_failing_the_job(flow):
    flow.fault(service="hubspot", method="POST", path="/crm/v3/objects/tickets", status=429, times=1,
               retry_after=0.1)
    inbox_id = put_form()
    assert run(inbox_id) == "done" and row(inbox_id).attempts == 1
    assert len(objects(flow, "hubspot", "tickets")) == 1


def test_a_transient_fault_fails_the_attempt_and_the_retry_completes(flow):
    # A 5xx on a create is not retried inline (the vendor may have made it); the job's retry searches first.
    flow.fault(service="hubspot", method="POST", path="/crm/v3/objects/tickets", status=503, times=1)
    inbox_id = put_form()
    with pytest.raises(Exception):
        run(inbox_id)
    failed = row(inbox_id)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.last_error == "Unavailable: hubspot HTTP 503"
    assert "example.com" not in failed.last_error
    flow.clear_calls()
    assert run(inbox_id) == "done"
    assert ("hubspot", "POST", "/crm/v3/objects/tickets/search") in writes(flow)
    assert len(objects(flow, "hubspot", "tickets")) == 1 and len(flow.state("happyfox")["tickets"]) == 1
    assert len(objects(flow, "hubspot", "contacts")) == 1 and len(flow.mail()) == 1
    assert row(inbox_id).last_error is None and row(inbox_id).attempts == 2


def test_a_permanent_fault_is_dead_with_its_reason_and_replay_completes(flow):
    flow.fault(service="happyfox", method="POST", path="/api/1.1/json/tickets/", status=400, times=1)
    inbox_id = put_form()
    assert run(inbox_id) == "dead"
    dead = row(inbox_id)
    assert dead.status == "dead" and dead.last_error == "InvalidRequest: happyfox HTTP 400"
    assert flow.state("happyfox")["tickets"] == {}
    assert inbox.replay([inbox_id]) == [inbox_id]
    assert row(inbox_id).status == "pending" and row(inbox_id).attempts == 0
    assert run(inbox_id) == "done"
    assert len(flow.state("happyfox")["tickets"]) == 1 and len(flow.mail()) == 1


def test_the_last_retry_ends_dead(flow, monkeypatch):
    flow.fault(service="hubspot", method="POST", path="/crm/v3/objects/contacts/batch/upsert", status=503,
               times=100)
    inbox_id = put_form()
    with pytest.raises(Exception):
        dispatch.run(inbox_id, retries_left=0)
    assert row(inbox_id).status == "dead" and row(inbox_id).last_error == "Unavailable: hubspot HTTP 503"


def test_an_unknown_category_from_yaml_changes_falls_back_to_other(flow):
    payload = website_form()
    payload["fields"]["purpose"] = "no_such_category"
    run(put("form", "form", payload))
    assert tickets()[0].category == "egyeb"
    assert settings_module.get().config.categories["egyeb"].happyfox == \
        list(flow.state("happyfox")["tickets"].values())[0]["category"]


def test_a_dropped_connection_is_survived(flow):
    """On the idempotent upsert the connector retries inline; on a create the job's retry searches first."""
    flow.fault(service="hubspot", method="POST", path="/crm/v3/objects/contacts/batch/upsert", drop=True, times=1)
    flow.fault(service="happyfox", method="POST", path="/api/1.1/json/tickets/", drop=True, times=1)
    inbox_id = put_form()
    with pytest.raises(Exception):
        run(inbox_id)
    assert row(inbox_id).last_error.startswith("Unavailable: happyfox")
    assert run(inbox_id) == "done"
    assert len(flow.state("happyfox")["tickets"]) == 1 and len(objects(flow, "hubspot", "contacts")) == 1
    assert len(objects(flow, "hubspot", "tickets")) == 1 and len(flow.mail()) == 1


def test_the_form_intake_and_a_crash_retry_on_each_database(any_database, sandbox, monkeypatch):
    """The same flow on SQLite and PostgreSQL: one of everything, a crash after the HubSpot ticket included."""
    fast_vendors()
    crash_once_recording(monkeypatch, "hubspot-ticket:")
    inbox_id = put_form("db@example.com")
    with pytest.raises(RuntimeError):
        run(inbox_id)
    assert run(inbox_id) == "done"
    [ticket] = tickets()
    assert ticket.hubspot_ticket_id and ticket.told_id
    assert len(objects(sandbox, "hubspot", "tickets")) == 1 and len(sandbox.mail()) == 1


def test_a_missing_key_field_in_happyfox_is_dead_with_a_reason_that_says_so(flow):
    loaded = settings_module.get()
    intake = loaded.config.intake.model_copy(update={"happyfox_key_field": "no_such_field"})
    settings_module.use(loaded.model_copy(update={"config": loaded.config.model_copy(update={"intake": intake})}))
    fast_vendors()
    inbox_id = put_form()
    assert run(inbox_id) == "dead"
    assert row(inbox_id).last_error == "MissingSetup" and flow.state("happyfox")["tickets"] == {}
