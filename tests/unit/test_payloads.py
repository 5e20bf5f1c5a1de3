"""The payload validators at the handler boundary: every real fixture reads, and what does not read is described by
field path and error type only."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from flows import inbox, payloads

ROOT = Path(__file__).resolve().parents[2]


def event(payload, source: str = "aircall", kind: str = "call.ended") -> inbox.Event:
    return inbox.Event(id=1, source=source, kind=kind, event_key="k", payload=payload,
                       received_at=datetime.now(timezone.utc), retry=False)


def fixtures(folder: str) -> list[Path]:
    return sorted((ROOT / "webhooks" / folder / "fixtures").glob("*.json"))


@pytest.mark.parametrize("path", fixtures("aircall"), ids=lambda p: p.name)
def test_every_aircall_fixture_reads(path):
    body = json.loads(path.read_text())
    call = payloads.read(event(body), payloads.AircallCallEvent).data
    assert call.id == str(body["data"]["id"])


@pytest.mark.parametrize("path", fixtures("happyfox"), ids=lambda p: p.name)
def test_every_happyfox_fixture_reads_and_keeps_its_hint(path):
    body = json.loads(path.read_text())
    ticket = body.get("ticket", body)  # as webhooks/happyfox stores it
    change = payloads.read(event({"ticket_id": ticket["id"], "ticket": ticket}), payloads.HappyFoxTicketEvent)
    assert change.ticket_id == int(ticket["id"]) and change.hint.raw == ticket


@pytest.mark.parametrize("path", fixtures("hubspot"), ids=lambda p: p.name)
def test_every_hubspot_fixture_reads(path):
    for item in json.loads(path.read_text()):
        change = payloads.read(event(item), payloads.HubSpotEvent)
        assert change.object_id == item["objectId"] and change.property_name == item.get("propertyName")


def test_a_path_names_list_items_and_nested_fields():
    bad = {"data": {"id": 1, "contact": {"emails": [{"value": "a@example.com"}, {"value": 5}]}}}
    with pytest.raises(inbox.Permanent) as caught:
        payloads.read(event(bad), payloads.AircallCallEvent)
    assert str(caught.value) == "invalid aircall call.ended payload: data.contact.emails[1].value string_type"
    assert inbox.is_permanent(caught.value)


def test_many_problems_are_cut_short_and_no_value_is_quoted():
    secret = "+36301234567"
    bad = {"data": {"id": [secret], **{name: [secret] for name in ("direction", "raw_digits", "voicemail",
                                                                     "recording", "asset", "missed_call_reason")}}}
    with pytest.raises(inbox.Permanent) as caught:
        payloads.read(event(bad), payloads.AircallCallEvent)
    text = str(caught.value)
    assert text.startswith("invalid aircall call.ended payload: data.id id_type; data.direction string_type")
    assert text.endswith("(and 2 more)") and secret not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no ValidationError text behind it


def test_a_redacted_payload_says_so():
    with pytest.raises(inbox.Permanent, match="payload: erased$"):
        payloads.read(event({"erased": "tombstone"}, "happyfox", "ticket"), payloads.HappyFoxTicketEvent)


def test_ids_are_text_whatever_the_vendor_sent():
    assert payloads.read(event({"data": {"id": 1003}}), payloads.AircallCallEvent).data.id == "1003"
    assert payloads.read(event({"data": {"id": "abc"}}), payloads.AircallCallEvent).data.id == "abc"
    for wrong in (True, "", 1.5, None):
        with pytest.raises(inbox.Permanent, match="data.id id_type"):
            payloads.read(event({"data": {"id": wrong}}), payloads.AircallCallEvent)


def test_a_happyfox_hint_is_read_as_the_connector_reads_a_ticket():
    body = {"ticket_id": 5, "ticket": {"status": {"name": "Closed", "behavior": "completed"}, "category": 3,
                                       "updates": [{"update_id": 1, "timestamp": "2026-11-24 13:40:31",
                                                    "by": {"type": "staff"}, "message": {"text": "Kész."}}]}}
    hint = payloads.read(event(body, "happyfox", "ticket"), payloads.HappyFoxTicketEvent).hint
    assert (hint.status_name, hint.status_behavior, hint.category_id) == ("Closed", "completed", 3)
    assert hint.updates[0].public_staff_reply and hint.updates[0].timestamp == datetime(2026, 11, 24, 13, 40, 31,
                                                                                       tzinfo=timezone.utc)
    assert payloads.read(event({"ticket_id": 5}, "happyfox", "ticket"), payloads.HappyFoxTicketEvent).hint.raw == {}


def test_a_happyfox_hint_of_the_wrong_shape_names_the_field():
    body = {"ticket_id": 5, "ticket": {"updates": [{"timestamp": "tegnap", "by": {"type": "staff"}}]}}
    with pytest.raises(inbox.Permanent) as caught:
        payloads.read(event(body, "happyfox", "ticket"), payloads.HappyFoxTicketEvent)
    assert str(caught.value) == "invalid happyfox ticket payload: ticket.updates[0].timestamp happyfox_time"
    assert "tegnap" not in str(caught.value)
