"""The sandbox's `/_sandbox/` control API and console, vendor-neutral: faults, the call log, rate limits, reset,
the mail sink and webhook emission, whatever fakes exist. Faults and limits are checked before a fake's own
authentication and routes, so an unauthenticated request to a HubSpot path shows them."""
from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage

import httpx
import pytest

CONTACTS = "/crm/v3/objects/contacts"


def send_mail(sandbox, subject: str = "Teszt levél", to: str = "anna@example.com") -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Support <support@example.com>", to, subject
    msg.set_content("Szöveges törzs")
    msg.add_alternative("<p>HTML törzs</p>", subtype="html")
    with smtplib.SMTP("127.0.0.1", sandbox.smtp_port, timeout=5) as smtp:
        smtp.send_message(msg)


# ---------------------------------------------------------------- state

def test_state_holds_one_entry_per_fake_and_nothing_else(sandbox):
    state = sandbox.state()
    assert set(state) == set(sandbox.running.sandbox.vendors)
    assert "hubspot" in state
    assert all(isinstance(objects, dict) for objects in state.values())


# ---------------------------------------------------------------- faults

def test_fault_is_listed_answered_and_used_up(sandbox):
    assert sandbox.http.get("/_sandbox/faults").json() == []
    added = sandbox.http.post("/_sandbox/faults", json={"service": "hubspot", "method": "get", "path": CONTACTS,
                                                        "status": 503, "times": 2})
    assert added.status_code == 201
    assert added.json()["method"] == "GET"
    [listed] = sandbox.http.get("/_sandbox/faults").json()
    assert (listed["service"], listed["path"], listed["status"], listed["times"]) == ("hubspot", CONTACTS, 503, 2)
    assert [sandbox.http.get(CONTACTS).status_code for _ in range(2)] == [503, 503]
    assert sandbox.http.get(CONTACTS).status_code != 503  # used up: the fake's own answer (401 without a token)
    assert sandbox.http.get("/_sandbox/faults").json() == []


def test_fault_matches_method_and_path(sandbox):
    sandbox.fault(service="hubspot", method="POST", path="/crm/v3/objects/*", status=500, times=5)
    assert sandbox.http.get(CONTACTS).status_code != 500           # another method
    assert sandbox.http.post("/crm/v4/associations", json={}).status_code != 500  # outside the prefix
    assert sandbox.http.post(f"{CONTACTS}/batch/upsert", json={}).status_code == 500


def test_a_fault_every_fifth_request_is_a_steady_twenty_percent_storm(sandbox):
    sandbox.fault(service="hubspot", method="GET", path=CONTACTS, status=503, times=2, every=5)
    answers = [sandbox.http.get(CONTACTS).status_code for _ in range(15)]
    assert [i for i, status in enumerate(answers) if status == 503] == [4, 9]  # then used up


def test_fault_with_retry_after_and_429(sandbox):
    sandbox.fault(service="hubspot", path=CONTACTS, status=503, retry_after=7)
    sandbox.fault(service="hubspot", path=CONTACTS, status=429, retry_after=3)
    first = sandbox.http.get(CONTACTS)
    assert (first.status_code, first.headers["Retry-After"]) == (503, "7")
    assert sandbox.http.get(CONTACTS).status_code == 429


def test_delay_fault_holds_the_answer(sandbox):
    sandbox.fault(service="hubspot", path=CONTACTS, delay=0.3, status=502)
    started = time.monotonic()
    assert sandbox.http.get(CONTACTS).status_code == 502
    assert time.monotonic() - started >= 0.3
    sandbox.fault(service="hubspot", path=CONTACTS, delay=1.0)
    with pytest.raises(httpx.ReadTimeout):  # a client with a shorter timeout gives up
        httpx.get(sandbox.base_url + CONTACTS, timeout=0.2)


def test_drop_fault_breaks_the_connection(sandbox):
    sandbox.fault(service="hubspot", path=CONTACTS, drop=True)
    with pytest.raises(httpx.TransportError):
        httpx.get(sandbox.base_url + CONTACTS, timeout=5)
    assert httpx.get(sandbox.base_url + CONTACTS, timeout=5).status_code != 500  # only once


def test_clear_faults(sandbox):
    sandbox.fault(service="hubspot", path=CONTACTS, status=503, times=10)
    assert sandbox.http.delete("/_sandbox/faults").status_code == 200
    assert sandbox.http.get("/_sandbox/faults").json() == []
    assert sandbox.http.get(CONTACTS).status_code != 503


@pytest.mark.parametrize("body, field", [
    ({"path": CONTACTS, "status": 503}, "service"),               # no service
    ({"service": "hubspot", "colour": "red"}, "colour"),          # unknown key
    ({"service": "hubspot", "status": "soon"}, "status"),         # not a number
    ({"service": "hubspot", "status": 999}, "status"),            # not an HTTP status
    ({"service": "hubspot", "times": 0}, "times"),
    ({"service": "hubspot", "delay": -1}, "delay"),
    ({"service": "nosuchvendor", "status": 503}, "service"),
])
def test_bad_fault_is_400_and_not_added(sandbox, body, field):
    response = sandbox.http.post("/_sandbox/faults", json=body)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert sandbox.http.get("/_sandbox/faults").json() == []


@pytest.mark.parametrize("content", [b"[1, 2]", b"not json", b""])
def test_fault_body_must_be_a_json_object(sandbox, content):
    response = sandbox.http.post("/_sandbox/faults", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]


# ---------------------------------------------------------------- the call log

def test_calls_are_logged_filtered_and_cleared(sandbox):
    sandbox.wait_idle()  # an earlier test's straggling request (a delayed fault) is logged before the count starts
    sandbox.clear_calls()
    sandbox.fault(service="hubspot", path=CONTACTS, status=503)
    sandbox.http.get(CONTACTS)
    sandbox.http.post(f"{CONTACTS}/search", json={})
    sandbox.http.get("/_sandbox/state")  # control calls are not vendor calls
    calls = sandbox.calls()
    assert [(c["service"], c["method"], c["path"]) for c in calls] == [
        ("hubspot", "GET", CONTACTS), ("hubspot", "POST", f"{CONTACTS}/search")]
    assert calls[0]["status"] == 503
    assert calls[0]["time"] <= calls[1]["time"] and all(c["seconds"] >= 0 for c in calls)
    assert sandbox.calls("hubspot") == calls
    others = [name for name in sandbox.running.sandbox.vendors if name != "hubspot"]
    for name in others:
        assert sandbox.calls(name) == []
    sandbox.clear_calls()
    assert sandbox.calls() == []


# ---------------------------------------------------------------- rate limits

def test_limit_answers_429_once_exceeded_and_can_be_lifted(sandbox):
    answer = sandbox.http.post("/_sandbox/limits", json={"hubspot": {"requests": 2, "per_seconds": 60}})
    assert answer.json()["hubspot"] == {"requests": 2, "per_seconds": 60.0}
    statuses = [sandbox.http.get(CONTACTS).status_code for _ in range(3)]
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    assert "hubspot" not in sandbox.http.post("/_sandbox/limits", json={"hubspot": None}).json()
    assert sandbox.http.get(CONTACTS).status_code != 429


@pytest.mark.parametrize("body", [
    {"nosuchvendor": None},
    {"hubspot": {"requests": "many", "per_seconds": 1}},
    {"hubspot": {"requests": 0, "per_seconds": 1}},
    {"hubspot": 5},
    {"hubspot": {"requests": 5}},
])
def test_bad_limit_is_400_and_changes_nothing(sandbox, body):
    before = sandbox.http.post("/_sandbox/limits", json={}).json()
    response = sandbox.http.post("/_sandbox/limits", json=body)
    assert response.status_code == 400
    assert response.json()["fields"]
    assert sandbox.http.post("/_sandbox/limits", json={}).json() == before


# ---------------------------------------------------------------- reset

def test_reset_clears_faults_calls_mail_and_restores_limits(sandbox):
    default_limits = {name: list(vendor.limit) for name, vendor in sandbox.running.sandbox.vendors.items()}
    sandbox.fault(service="hubspot", path=CONTACTS, status=503, times=5)
    sandbox.http.get(CONTACTS)
    send_mail(sandbox)
    sandbox.limits(hubspot={"requests": 1, "per_seconds": 1})
    assert sandbox.http.post("/_sandbox/reset").json() == {"ok": True}
    assert sandbox.http.get("/_sandbox/faults").json() == []
    assert sandbox.calls() == []
    assert sandbox.mail() == []
    limits = sandbox.http.post("/_sandbox/limits", json={}).json()
    assert {k: [v["requests"], v["per_seconds"]] for k, v in limits.items()} == default_limits


# ---------------------------------------------------------------- mail sink

def test_mail_sink_keeps_what_it_receives(sandbox):
    send_mail(sandbox, subject="Bejelentését rögzítettük (#42)")
    [mail] = sandbox.mail()
    assert mail["from"] == "Support <support@example.com>"
    assert mail["to"] == ["anna@example.com"]
    assert mail["subject"] == "Bejelentését rögzítettük (#42)"
    assert mail["text"].strip() == "Szöveges törzs"
    assert mail["html"].strip() == "<p>HTML törzs</p>"


# ---------------------------------------------------------------- console

def test_console_page_renders_and_escapes(sandbox):
    send_mail(sandbox, subject="<script>alert(1)</script>")
    sandbox.fault(service="hubspot", path=CONTACTS, status=503)
    sandbox.http.get(CONTACTS)
    page = sandbox.http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Switchboard sandbox" in page.text
    assert all(name in page.text for name in sandbox.running.sandbox.vendors)
    assert f"503 GET {CONTACTS}" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text


# ---------------------------------------------------------------- emit

def test_emit_without_url_or_webhook_url_is_400(sandbox):
    emitting = [n for n, v in sandbox.running.sandbox.vendors.items() if v.emit is not None]
    assert sandbox.running.sandbox.webhook_url is None
    for service in emitting:
        response = sandbox.http.post("/_sandbox/emit", json={"service": service, "event": "x", "data": {}})
        assert response.status_code == 400
        assert "--webhook-url" in response.json()["error"]
    assert sandbox.http.get("/_sandbox/emitted").json() == []


@pytest.mark.parametrize("body", [{"service": "nosuchvendor", "url": "http://127.0.0.1:1/"}, {}, []])
def test_emit_bad_service_is_400(sandbox, body):
    response = sandbox.http.post("/_sandbox/emit", json=body)
    assert response.status_code == 400
    assert response.json()["error"]


def test_idle_waits_for_a_slow_answer_and_refuses_to_wait_forever(sandbox):
    """`GET /_sandbox/idle` answers only once every request is answered and logged: a test waits on it instead of
    sleeping; a request still under way past `timeout` is a 408."""
    import threading

    import httpx
    sandbox.fault(service="hubspot", path="/crm/v3/pipelines/*", delay=0.6, times=1)
    headers = {"Authorization": f"Bearer {sandbox.credentials['hubspot_access_token']}"}
    slow = threading.Thread(target=lambda: httpx.get(f"{sandbox.base_url}/crm/v3/pipelines/tickets", headers=headers,
                                                      timeout=5))
    slow.start()
    while not sandbox.running.sandbox._busy:  # noqa: SLF001 - the request has reached the fake
        pass
    assert sandbox.http.get("/_sandbox/idle", params={"timeout": 0.1}).status_code == 408
    assert sandbox.calls("hubspot") == []
    sandbox.wait_idle()
    assert [c["path"] for c in sandbox.calls("hubspot")] == ["/crm/v3/pipelines/tickets"]
    slow.join()
    assert sandbox.http.get("/_sandbox/idle", params={"quiet": "soon"}).status_code == 400


# ---------------------------------------------------------------- seeding

def seed_item(n: int, modified: str, **changes) -> dict:
    email = f"seeded{n}@example.com"
    return {"modified": modified, "status": "Pending",
            "happyfox": {"subject": f"Seeded {n}", "text": "Szöveg", "category": 3, "email": email, "name": "Seed"},
            "hubspot_contact": {"email": email, "firstname": "Seed"},
            "hubspot_ticket": {"subject": f"Seeded {n}", "hs_pipeline_stage": "2"}, **changes}


def test_seeded_tickets_are_what_the_apis_list_dated_as_given(sandbox):
    answer = sandbox.http.post("/_sandbox/seed/tickets", json={"tickets": [
        seed_item(1, "2026-01-02T03:04:05Z"), seed_item(2, "2026-01-02T03:04:06+00:00")]})
    assert answer.status_code == 201
    made = answer.json()["tickets"]
    creds = sandbox.credentials
    listed = sandbox.http.get("/api/1.1/json/tickets/", params={"status": "_all", "sort": "last_modifieda",
                                                               "q": 'last-modified-on-or-after:"2026/01/02"'},
                              auth=(creds["happyfox_api_key"], creds["happyfox_auth_code"])).json()["data"]
    assert [t["id"] for t in listed] == [m["happyfox_id"] for m in made]
    assert [t["last_modified"] for t in listed] == ["2026-01-02 03:04:05", "2026-01-02 03:04:06"]
    assert listed[0]["status"]["name"] == "Pending" and listed[0]["user"]["id"] == made[0]["happyfox_user_id"]
    assert listed[0]["updates"][-1]["status_change"]["new_name"] == "Pending"
    found = sandbox.http.post("/crm/v3/objects/tickets/search", json={
        "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "LT",
                                       "value": "2026-01-02T03:04:06Z"}]}], "properties": ["hs_pipeline_stage"]},
        headers={"Authorization": f"Bearer {creds['hubspot_access_token']}"}).json()["results"]
    assert [(t["id"], t["properties"]["hs_pipeline_stage"]) for t in found] == [(made[0]["hubspot_ticket_id"], "2")]
    links = sandbox.state("hubspot")["associations"]
    assert {"from": ["tickets", made[1]["hubspot_ticket_id"]], "to": ["contacts", made[1]["hubspot_contact_id"]],
            "typeId": 16} in links
    assert [c["service"] for c in sandbox.calls()] == ["happyfox", "hubspot"]  # the test's reads: seeding is none


@pytest.mark.parametrize("bad", [{"status": "Lost"}, {"hubspot_ticket": {"subject": "x", "hs_pipeline_stage": "9"}},
                                 {"hubspot_contact": {"email": "seeded1@example.com"}}])
def test_a_refused_seed_item_stores_nothing_of_its_request(sandbox, bad):
    answer = sandbox.http.post("/_sandbox/seed/tickets", json={"tickets": [
        seed_item(1, "2026-01-02T03:04:05Z"), seed_item(2, "2026-01-02T03:04:06Z", **bad)]})
    assert answer.status_code == 400
    state = sandbox.state()
    assert state["happyfox"]["tickets"] == {} and state["happyfox"]["users"] == {}
    assert state["hubspot"]["tickets"] == {} and state["hubspot"]["contacts"] == {}
    assert state["hubspot"]["associations"] == []
