"""What an attacker sent and broke (issue: hardened under attack), now refused at the door: the exact requests
that were answered 500, the addresses that smuggled a second recipient into a confirmation mail, and the text
that was accepted with a 202 and refused later by HappyFox or the mail server. The fuzz suite (tests/fuzz/)
searches for more of the same; these are the cases known to have broken."""
from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from connectors.errors import InvalidRequest
from connectors.mail import Mailer
from core import settings as settings_module
from core import store
from switchboard.cli import main
from core.models import InboxEvent
from flows import inbox
from webhooks.app import create_app

from ..fuzz.kit import form_headers, hubspot_headers
from .flowkit import fixture, identities, put, put_form, queue, run, website_form  # noqa: F401 - queue is a fixture

DEEP = b"[" * 100_000
SMUGGLED = ["a,victim1@example.com", "grp:victim2@example.com;", "Victim <victim3@example.com>",
            "victim4@example.com\r\nBcc: victim5@example.com", "\"a,b\"@example.com"]


def stored() -> list[InboxEvent]:
    with store.session() as s:
        return list(s.scalars(select(InboxEvent)))


@pytest.fixture
def admin(settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.env.secret('admin_token')}"}


def post_form(client: Any, settings: Any, fields: dict[str, Any], files: list[Any] | None = None) -> Any:
    if files is None:
        body = json.dumps({"form": "website", "fields": fields}).encode()
        content_type = "application/json"
    else:
        request = httpx.Request("POST", "http://form.invalid/", data={"form": "website", **fields}, files=files)
        body, content_type = request.read(), request.headers["Content-Type"]
    return client.post("/webhooks/form", data=body, content_type=content_type,
                       headers=form_headers(settings.env.secret("form_webhook_secret"), body))


def website_fields(**changes: str) -> dict[str, str]:
    fields = dict(fixture("webhooks/form/fixtures/submission__website.json")["fields"])
    fields.update(changes)
    return fields


# ---------------------------------------------------------------- the 500s of the report

def test_deep_nesting_is_a_400_on_every_receiver(client, settings):
    env = settings.env
    answers = {
        "form": client.post("/webhooks/form", data=DEEP, content_type="application/json",
                            headers=form_headers(env.secret("form_webhook_secret"), DEEP)),
        "aircall": client.post("/webhooks/aircall", data=DEEP, content_type="application/json"),
        "happyfox": client.post(f"/webhooks/happyfox?token={env.secret('happyfox_webhook_secret')}", data=DEEP,
                                content_type="application/json"),
        "hubspot": client.post("/webhooks/hubspot", data=DEEP, content_type="application/json",
                               headers=hubspot_headers(env.secret("hubspot_client_secret"), DEEP)),
    }
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 400)
    assert all(r.json["fields"] == {"body": "not valid JSON (UTF-8, at most 1024 levels deep)"}
               for r in answers.values())


def test_deep_nesting_on_the_admin_api_is_a_400(client, admin):
    for path in ("/admin/tickets", "/admin/customers/consent-withdrawal"):
        response = client.post(path, data=DEEP, content_type="application/json", headers=admin)
        assert response.status_code == 400 and response.json["fields"] == {
            "body": "not valid JSON (UTF-8, at most 1024 levels deep)"}


@pytest.mark.parametrize("headers", [
    {"X-HubSpot-Signature": "é" * 64},
    {"X-HubSpot-Signature": "sig", "X-HubSpot-Signature-Version": "v2é"},
    {"X-HubSpot-Signature-v3": "é" * 44, "X-HubSpot-Request-Timestamp": "1"},
    {"X-HubSpot-Signature-v3": "abc", "X-HubSpot-Request-Timestamp": "²"},
    {"X-HubSpot-Signature-v3": "abc", "X-HubSpot-Request-Timestamp": "9" * 400},
], ids=["non-ASCII v1", "non-ASCII version", "non-ASCII v3", "superscript timestamp", "huge timestamp"])
def test_hubspot_signature_headers_of_any_character_are_a_401(client, headers):
    body = json.dumps(fixture("webhooks/hubspot/fixtures/ticket.creation__new.json")).encode()
    assert client.post("/webhooks/hubspot", data=body, headers=headers,
                       content_type="application/json").status_code == 401


@pytest.mark.parametrize("ticket_id", ["²", "١٢", 10**30, 2**63, -1, 1.5, True, "12abc", ""])
def test_a_happyfox_id_that_is_no_64_bit_number_is_a_400(client, settings, ticket_id):
    body = {**fixture("webhooks/happyfox/fixtures/ticket.created__plain.json"), "id": ticket_id}
    response = client.post(f"/webhooks/happyfox?token={settings.env.secret('happyfox_webhook_secret')}",
                           json=body)
    assert response.status_code == 400 and response.json["fields"] == {"id": "required: a 64-bit integer"}
    assert stored() == []


def test_a_hubspot_id_past_64_bits_is_a_400(client, settings):
    [event] = fixture("webhooks/hubspot/fixtures/ticket.creation__new.json")
    body = json.dumps([{**event, "objectId": 10**30}]).encode()
    response = client.post("/webhooks/hubspot", data=body, content_type="application/json",
                           headers=hubspot_headers(settings.env.secret("hubspot_client_secret"), body))
    assert response.status_code == 400 and stored() == []


def test_an_aircall_event_name_too_long_for_the_inbox_is_a_400(client, settings):
    body = {**fixture("webhooks/aircall/fixtures/call.ended__missed.json"), "event": "call." + "x" * 100,
            "token": settings.env.secret("aircall_webhook_token")}
    response = client.post("/webhooks/aircall", json=body)
    assert response.status_code == 400 and set(response.json["fields"]) == {"key", "kind"} and stored() == []


# ---------------------------------------------------------------- one mailbox, the one stored

@pytest.mark.parametrize("address", SMUGGLED)
def test_a_smuggled_address_on_the_form_is_a_field_error_and_mails_nobody(client, settings, sandbox, address):
    response = post_form(client, settings, website_fields(email=address))
    assert response.status_code == 400 and list(response.json["fields"]) == ["email"]
    assert stored() == [] and sandbox.mail() == []


@pytest.mark.parametrize("address", SMUGGLED)
def test_a_smuggled_address_on_the_admin_api_is_a_field_error(client, admin, address):
    report = {"channel": "post", "email": address, "subject": "Levél", "category": "egyeb"}
    response = client.post("/admin/tickets", json=report, headers=admin)
    assert response.status_code == 400 and list(response.json["fields"]) == ["email"]
    response = client.post("/admin/customers/consent-withdrawal", json={"email": address}, headers=admin)
    assert response.status_code == 400 and list(response.json["fields"]) == ["email"]
    assert stored() == []


@pytest.mark.parametrize("address", SMUGGLED[:2])
def test_a_smuggled_address_already_stored_or_from_a_vendor_is_never_mailed(queue, sandbox, address):
    """A row stored before this check, or an address a vendor hands us: read as no address at all, never mailed
    (here HappyFox then refuses a ticket with no contact, and the event is dead at once)."""
    assert run(put("form", "form", website_form(address))) == "dead"  # stored as it was before the check
    assert sandbox.mail() == [] and "victim" not in json.dumps([sandbox.state(v) for v in ("happyfox", "hubspot")])


def test_the_address_mailed_is_the_address_stored(client, settings, sandbox, queue):
    response = post_form(client, settings, website_fields(email="  Kata.Kovacs@Example.COM "))
    assert response.status_code == 202
    [row] = stored()
    assert row.payload["fields"]["email"] == "kata.kovacs@example.com"
    assert run(row.id) == "done"
    [mail] = sandbox.mail()
    assert mail["to"] == ["kata.kovacs@example.com"]
    with store.session() as s:
        from core.models import Customer
        [customer] = s.scalars(select(Customer)).all()
    assert identities(customer.id)["email"] == ["kata.kovacs@example.com"]


def test_the_mailer_refuses_a_recipient_that_is_not_one_mailbox(settings, sandbox):
    mailer = Mailer.from_settings(settings)
    with pytest.raises(InvalidRequest) as refused:
        mailer.send("a,victim1@example.com", "confirmation", "hu", ticket_id="1", subject="x", name="x")
    assert inbox.is_permanent(refused.value) and sandbox.mail() == []


@pytest.mark.parametrize("command", [["erase", "--email"], ["export", "--email"],
                                     ["ticket", "create", "--channel", "post", "--subject", "Levél", "--email"]])
def test_the_cli_refuses_a_smuggled_address(settings, command):
    result = CliRunner().invoke(main, [*command, "a,victim1@example.com"])
    assert result.exit_code == 2 and "email" in result.output and "victim1" not in result.output


# ---------------------------------------------------------------- limits from YAML, at the door

def test_a_ten_megabyte_summary_is_refused_at_the_door(client, settings, sandbox):
    response = post_form(client, settings, website_fields(rovid_leiras="x" * (10 * 1024 * 1024 - 4096)))
    assert response.status_code == 400
    assert response.json["fields"] == {"rovid_leiras": "longer than 250 characters"}
    assert stored() == [] and sandbox.mail() == []


def test_every_text_field_of_the_form_has_its_limit(client, settings):
    limits = settings.config.input
    too_long = {posted: "x" * (limits.chars(ours) + 1)
                for ours, posted in settings.config.forms["website"].fields.items()
                if ours not in ("attachment", "email", "purpose", "product", "language")}  # choices, not text
    response = post_form(client, settings, website_fields(**too_long))
    assert response.status_code == 400
    assert response.json["fields"] == {posted: f"longer than {len(value) - 1} characters"
                                       for posted, value in too_long.items()}


def test_limits_come_from_the_yaml(settings):
    config = settings.config.model_copy(update={"input": settings.config.input.model_copy(
        update={"max_chars": {**settings.config.input.max_chars, "summary": 10}})})
    client = create_app(settings_module.use(settings.model_copy(update={"config": config}))).test_client()
    response = post_form(client, settings, website_fields(rovid_leiras="tizenegy bet"))
    assert response.status_code == 400 and response.json["fields"] == {"rovid_leiras": "longer than 10 characters"}


def test_too_many_attachments_are_a_413_naming_the_field(client, settings):
    files = [("fajl", (f"{n}.txt", b"hello", "text/plain")) for n in range(settings.config.input.attachments_max_count + 1)]
    response = post_form(client, settings, website_fields(), files=files)
    assert response.status_code == 413 and list(response.json["fields"]) == ["fajl"] and stored() == []


def test_a_manual_report_too_long_for_happyfox_is_a_400_naming_the_field(client, admin, settings):
    report = {"channel": "post", "email": "anna@example.com", "subject": "Levél", "category": "egyeb",
              "details": "x" * (settings.config.input.chars("details") + 1)}
    response = client.post("/admin/tickets", json=report, headers=admin)
    assert response.status_code == 400 and response.json["fields"] == {"details": "longer than 20000 characters"}
    assert stored() == []
