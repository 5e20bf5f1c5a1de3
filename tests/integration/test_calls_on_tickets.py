"""The phone, whole (issue 18): a call from a customer with an open ticket is logged on that ticket too (a HappyFox
private note; the HubSpot call associated to the ticket's mirror as well as the contact), a missed call or a
voicemail adds to the open ticket instead of opening a second, and Aircall tags and comments reach the ticket.
Every event goes through the real receiver (`deliver`); replays and crashes leave one note and one association."""
from __future__ import annotations

import copy

import pytest

from connectors.errors import Unavailable

from .delivery import deliver, fixture, form_body
from .flowkit import crash_once_recording, fast_vendors, objects, row, run, tickets, website_form, writes

CALL_TO_CONTACT, CALL_TO_TICKET = 194, 220


def aircall(name: str, **changes) -> dict:
    payload = copy.deepcopy(fixture("aircall", name))
    payload.pop("token", None)
    payload["data"].update(changes)
    return payload


def open_form_ticket(flow) -> dict:
    """Kata's website form: her open ticket, as HappyFox holds it."""
    result = deliver("form", form_body(website_form()))
    assert result.outcome == "done"
    [hf] = flow.state("happyfox")["tickets"].values()
    return hf


def notes(flow, happyfox_id: int) -> list[str]:
    ticket = flow.state("happyfox")["tickets"][str(happyfox_id)] if str(happyfox_id) in \
        flow.state("happyfox")["tickets"] else flow.state("happyfox")["tickets"][happyfox_id]
    return [u["message"]["text"] for u in ticket.get("updates") or []
            if u.get("message") and u["message"].get("message_type") == "p"]


def associated(flow, call_id: str, type_id: int) -> list[str]:
    return [a["to"][1] for a in flow.state("hubspot")["associations"]
            if a["typeId"] == type_id and a["from"] == ["calls", call_id]]


def test_an_answered_call_is_logged_on_the_callers_open_ticket(flow):
    hf = open_form_ticket(flow)
    [mirror] = objects(flow, "hubspot", "tickets")
    result = deliver("aircall", aircall("call.ended__answered_inbound"))
    assert result.outcome == "done"

    assert len(tickets()) == 1 and len(flow.state("happyfox")["tickets"]) == 1  # no second ticket
    [note] = notes(flow, hf["id"])
    assert "Bejövő hívás" in note and "335 s" in note and "Anna Agent" in note
    assert "https://assets.aircall.io/recording/1002" in note and "[happyfox-note:aircall-call:1002]" in note
    [call] = objects(flow, "hubspot", "calls")
    [contact] = objects(flow, "hubspot", "contacts")
    assert associated(flow, call["id"], CALL_TO_CONTACT) == [contact["id"]]
    assert associated(flow, call["id"], CALL_TO_TICKET) == [mirror["id"]]

    # Aircall delivers again (at least once), and the job runs again: nothing twice.
    again = deliver("aircall", aircall("call.ended__answered_inbound"))
    assert again.status == 200 and again.inbox_ids == result.inbox_ids
    flow.clear_calls()
    assert run(result.inbox_id) == "skipped" and writes(flow) == []
    assert len(notes(flow, hf["id"])) == 1 and len(objects(flow, "hubspot", "calls")) == 1


def test_an_outbound_call_about_a_ticket_is_recorded_on_it_as_well_as_the_contact(flow):
    hf = open_form_ticket(flow)
    [mirror] = objects(flow, "hubspot", "tickets")
    deliver("aircall", aircall("call.ended__answered_inbound", id=3001, direction="outbound"))
    [call] = objects(flow, "hubspot", "calls")
    assert associated(flow, call["id"], CALL_TO_TICKET) == [mirror["id"]]
    [note] = notes(flow, hf["id"])
    assert "Kimenő hívás" in note


def test_a_missed_call_adds_to_the_open_ticket_instead_of_opening_a_second(flow):
    hf = open_form_ticket(flow)
    [mirror] = objects(flow, "hubspot", "tickets")
    deliver("aircall", aircall("call.ended__missed"))
    assert len(tickets()) == 1 and len(flow.state("happyfox")["tickets"]) == 1
    assert len(objects(flow, "hubspot", "tickets")) == 1 and len(flow.mail()) == 1  # the form's confirmation only
    [note] = notes(flow, hf["id"])
    assert "Nem fogadott hívás" in note and "agents_did_not_answer" in note
    [call] = objects(flow, "hubspot", "calls")
    assert associated(flow, call["id"], CALL_TO_TICKET) == [mirror["id"]]


def test_a_voicemail_and_its_call_ended_add_one_note_to_the_open_ticket(flow):
    hf = open_form_ticket(flow)
    left = aircall("call.voicemail_left__inbound")
    ended = copy.deepcopy(left)
    ended["event"] = "call.ended"
    assert deliver("aircall", left).outcome == "done"
    assert deliver("aircall", ended).outcome == "done"
    [note] = notes(flow, hf["id"])
    assert "Hangüzenet" in note
    assert len(tickets()) == 1 and len(objects(flow, "hubspot", "calls")) == 1


def test_the_decision_stands_after_the_open_ticket_closes(flow):
    """A comment a day later reaches the ticket the call was logged on, though it is closed by now."""
    hf = open_form_ticket(flow)
    deliver("aircall", aircall("call.ended__answered_inbound"))
    [ticket] = tickets()
    from core import store
    from core.models import Ticket
    with store.session() as s:
        s.get(Ticket, ticket.id).is_closed = True
    assert deliver("aircall", aircall("call.commented__answered_inbound")).outcome == "done"
    assert len(tickets()) == 1
    assert any("Asks for a refund" in n for n in notes(flow, hf["id"]))


def test_tags_and_comments_reach_the_ticket_once_each(flow):
    hf = open_form_ticket(flow)
    deliver("aircall", aircall("call.ended__answered_inbound"))
    tagged = deliver("aircall", aircall("call.tagged__answered_inbound"))
    assert tagged.outcome == "done"
    commented = deliver("aircall", aircall("call.commented__answered_inbound"))
    assert commented.outcome == "done"
    found = notes(flow, hf["id"])
    assert len(found) == 3  # the call, its tag, its comment
    assert "Aircall címke: Callback Request" in found[1]
    assert "Aircall megjegyzés (Anna Agent): Asks for a refund" in found[2]

    # The comment event carries the tag too, and a replay of either posts nothing.
    flow.clear_calls()
    assert run(tagged.inbox_id) == "skipped" and run(commented.inbox_id) == "skipped"
    assert deliver("aircall", aircall("call.commented__answered_inbound")).status == 200
    assert writes(flow) == [] and len(notes(flow, hf["id"])) == 3


def test_tags_on_call_ended_and_the_tag_event_make_one_note(flow):
    hf = open_form_ticket(flow)
    tags = aircall("call.tagged__answered_inbound")["data"]["tags"]
    deliver("aircall", aircall("call.ended__answered_inbound", tags=tags))
    deliver("aircall", aircall("call.tagged__answered_inbound"))
    found = notes(flow, hf["id"])
    assert len(found) == 2 and sum("Callback Request" in n for n in found) == 1
    [call] = objects(flow, "hubspot", "calls")
    assert "Callback Request" in call["properties"]["hs_call_body"]


def test_a_tag_during_the_call_waits_for_call_ended(flow):
    open_form_ticket(flow)
    during = aircall("call.tagged__answered_inbound", ended_at=None, answered_at=None, status="ringing")
    flow.clear_calls()
    assert deliver("aircall", during).outcome == "done"
    assert writes(flow) == []  # not decided yet: a call not answered so far is not a missed call


def test_a_call_without_a_ticket_keeps_its_tags_in_aircall(flow):
    deliver("aircall", aircall("call.ended__answered_inbound"))
    flow.clear_calls()
    assert deliver("aircall", aircall("call.tagged__answered_inbound")).outcome == "done"
    assert writes(flow) == [] and tickets() == []


def test_a_crash_after_the_note_is_posted_does_not_post_it_twice(flow, monkeypatch):
    hf = open_form_ticket(flow)
    crash_once_recording(monkeypatch, "happyfox-note:")
    result = deliver("aircall", aircall("call.ended__answered_inbound"), run=False)
    with pytest.raises(RuntimeError):
        run(result.inbox_id)
    assert row(result.inbox_id).status == "failed" and len(notes(flow, hf["id"])) == 1
    assert run(result.inbox_id) == "done"
    assert len(notes(flow, hf["id"])) == 1 and len(objects(flow, "hubspot", "calls")) == 1


def test_happyfox_refusing_the_note_for_a_while_still_leaves_one_note(flow):
    hf = open_form_ticket(flow)
    flow.fault(service="happyfox", method="POST", path=f"/api/1.1/json/ticket/{hf['id']}/staff_pvtnote/",
               status=503, times=1)
    result = deliver("aircall", aircall("call.ended__answered_inbound"), run=False)
    with pytest.raises(Unavailable):
        run(result.inbox_id)
    assert row(result.inbox_id).status == "failed"
    assert notes(flow, hf["id"]) == []
    assert run(result.inbox_id) == "done"
    assert len(notes(flow, hf["id"])) == 1 and len(objects(flow, "hubspot", "calls")) == 1


def test_the_fake_tags_and_comments_a_call_and_sends_the_events(flow):
    """The sandbox's Aircall: what staff do in the Aircall app, through the API, with the webhooks Aircall sends."""
    import httpx

    from sandbox.aircall import simulate_call
    running = flow.running.sandbox
    call = simulate_call(running, "inbound", "+36 30 123 4567", 60)
    running.webhook_url = "http://127.0.0.1:9"  # nothing listens: only what was sent is looked at
    creds = running.credentials
    http = httpx.Client(base_url=flow.base_url, auth=(creds["aircall_api_id"], creds["aircall_api_token"]), timeout=5)
    assert http.post(f"/v1/calls/{call['id']}/tags", json={"tags": [60693]}).status_code == 204
    assert http.post(f"/v1/calls/{call['id']}/tags", json={"tags": [60693]}).status_code == 204  # once on the call
    assert http.post(f"/v1/calls/{call['id']}/tags", json={"tags": [1]}).status_code == 404
    assert http.post(f"/v1/calls/{call['id']}/comments", json={"content": ""}).status_code == 400
    assert http.post(f"/v1/calls/{call['id']}/comments", json={"content": "Call back Monday"}).status_code == 204
    stored = http.get(f"/v1/calls/{call['id']}").json()["call"]
    assert [t["name"] for t in stored["tags"]] == ["Refund"]
    assert [c["content"] for c in stored["comments"]] == ["Call back Monday"]
    assert [t["name"] for t in http.get("/v1/tags").json()["tags"]] == ["Callback Request", "Refund", "Complaint"]
    flow.wait_idle()
    sent = [e["event"] for e in flow.http.get("/_sandbox/emitted").json() if e["service"] == "aircall"]
    assert sent == ["call.tagged", "call.tagged", "call.commented"]


def test_a_voicemail_and_its_call_ended_at_the_same_moment_add_one_note(any_database, sandbox):
    """Both events of one call decide its ticket and note it at once: one decision, one note, one HubSpot call."""
    from .flowkit import race
    from .test_calls import loser
    fast_vendors()
    hf = open_form_ticket(sandbox)
    left = aircall("call.voicemail_left__inbound")
    ended = copy.deepcopy(left)
    ended["event"] = "call.ended"
    ids = [deliver("aircall", left, run=False).inbox_id, deliver("aircall", ended, run=False).inbox_id]
    # The note's post is held for a second: both jobs are inside the write at the same time.
    sandbox.fault(service="happyfox", method="POST", path=f"/api/1.1/json/ticket/{hf['id']}/staff_pvtnote/",
                  delay=1.0, times=2)
    retried = loser(race(*ids))
    assert run(retried) == "done"
    assert len(notes(sandbox, hf["id"])) == 1 and len(tickets()) == 1
    assert len(objects(sandbox, "hubspot", "calls")) == 1
