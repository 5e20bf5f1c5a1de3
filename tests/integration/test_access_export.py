"""Access export (policy 002): one JSON file and one readable HTML page with what every processor and Switchboard
hold about the person, read over the sandbox."""
from __future__ import annotations

import json

import pytest

from flows.privacy import access, erasure

from .flowkit import put_form, run
from .privacykit import EMAIL, OTHER_EMAIL, PHONE, present_everywhere, quick


@pytest.fixture
def flow(settings, sandbox):
    quick()
    return sandbox


def test_the_export_holds_the_data_of_every_processor(flow, tmp_path):
    made = present_everywhere(flow)
    assert run(put_form(OTHER_EMAIL, summary="Másik ügy")) == "done"
    result = access.export(email=EMAIL, out_dir=tmp_path)
    assert result.complete and result.json_path.parent == tmp_path
    data = json.loads(result.json_path.read_text(encoding="utf-8"))

    assert data["subject"] == {"emails": [EMAIL], "phones": [PHONE]} and data["errors"] == {}
    hubspot = data["hubspot"]
    assert [c["properties"]["email"] for c in hubspot["contacts"]] == [EMAIL]
    assert len(hubspot["tickets"]) == 2 and len(hubspot["calls"]) == 2
    assert {c["properties"]["hs_call_from_number"] for c in hubspot["calls"]} == {PHONE}
    happyfox = data["happyfox"]
    assert {t["id"] for t in happyfox["tickets"]} >= {made["happyfox_ticket"]} and len(happyfox["tickets"]) == 2
    assert [u["email"] for u in happyfox["contacts"]] == [EMAIL]
    aircall = data["aircall"]
    assert [c["id"] for c in aircall["contacts"]] == [made["aircall_contact"]]
    assert sorted(c["id"] for c in aircall["calls"]) == sorted(made["calls"])
    assert all(c["recording"] for c in aircall["calls"])
    assert sorted(m["id"] for m in data["gmail"]["messages"]) == sorted(made["messages"])
    ours = data["switchboard"]
    assert ours["identities"]["email"] == [EMAIL] and ours["identities"]["phone"] == [PHONE]
    assert len(ours["tickets"]) == 2 and {t["channel"] for t in ours["tickets"]} == {"form", "email"}
    assert {e["source"] for e in ours["inbox_events"]} >= {"form", "aircall"}
    assert OTHER_EMAIL not in result.json_path.read_text(encoding="utf-8")  # nobody else's data

    page = result.html_path.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and EMAIL in page and "Hubspot" in page and "Gmail" in page
    assert "Másik ügy" not in page


def test_html_is_escaped(flow, tmp_path):
    assert run(put_form(EMAIL, summary="<script>alert(1)</script>")) == "done"
    page = access.export(email=EMAIL, out_dir=tmp_path).html_path.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_an_unreachable_processor_is_named_and_the_export_is_incomplete(flow, tmp_path):
    present_everywhere(flow)
    flow.fault(service="gmail", method="GET", path="/gmail/v1/users/*", status=500, times=50)
    result = access.export(email=EMAIL, out_dir=tmp_path)
    assert not result.complete and list(result.data["errors"]) == ["gmail"]
    assert "500" in result.data["errors"]["gmail"] and EMAIL not in result.data["errors"]["gmail"]
    assert result.data["hubspot"]["contacts"]  # the others are still there
    assert "Gmail" in result.html_path.read_text(encoding="utf-8")


def test_after_erasure_the_export_is_empty(flow, tmp_path):
    present_everywhere(flow)
    assert erasure.run(erasure.request(email=EMAIL)) == "done"
    data = access.export(email=EMAIL, out_dir=tmp_path).data
    assert data["customer_ids"] == [] and data["hubspot"] == {"contacts": [], "tickets": [], "calls": []}
    assert data["happyfox"]["tickets"] == [] and data["gmail"] == {"messages": []}
    assert data["aircall"]["contacts"] == [] and all(not c["recording"] for c in data["aircall"]["calls"])
