"""The sandbox playing the website (`POST /_sandbox/emit` with service "form") and the console's buttons: the demo
form, Close beside each HappyFox ticket, and a simulated call. A small real receiver stands in for the service and
checks the Standard Webhooks signature with the package the service uses."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask, request
from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug.serving import make_server

from sandbox import website

SUBMISSION = {"form": "website", "fields": {"vezeteknev": "Teszt", "keresztnev": "Elek", "email": "elek@example.com",
                                            "cel": "panasz", "termek": "Crossec Norma", "rovid_leiras": "Ékezetes tárgy"}}


class Receiver:
    """`/webhooks/<service>` on a loopback port, keeping what arrives and whether the form's signature held."""

    def __init__(self, secret: str) -> None:
        self.received: list[dict[str, Any]] = []
        app = Flask(__name__)

        @app.post("/webhooks/<service>")
        def receive(service: str) -> tuple[str, int]:
            raw = request.get_data()
            try:
                body, verified = Webhook(secret).verify(raw, dict(request.headers)), True
            except WebhookVerificationError:
                body, verified = request.get_json(silent=True), False
            self.received.append({"service": service, "body": body, "verified": verified,
                                  "headers": dict(request.headers)})
            return "", 202 if verified or service != "form" else 401

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, service: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["service"] == service]


@pytest.fixture
def receiver(sandbox) -> Iterator[Receiver]:
    served = Receiver(sandbox.credentials["form_webhook_secret"])
    sandbox.running.sandbox.webhook_url = served.url  # the fixture puts it back to None
    yield served
    served.server.shutdown()
    served.server.server_close()


def wait_for(check, timeout: float = 5.0) -> Any:
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError("never happened")


def test_emit_form_posts_a_signed_submission_to_webhooks_form(sandbox, receiver):
    record = sandbox.emit("form", "", SUBMISSION)
    assert record["status"] == 202 and record["url"] == f"{receiver.url}/webhooks/form"
    [delivery] = receiver.of("form")
    assert delivery["verified"] and delivery["body"] == SUBMISSION  # signed over the exact UTF-8 body
    assert delivery["headers"]["Content-Type"] == "application/json"
    sandbox.emit("form", "", SUBMISSION)
    ids = {r["headers"]["Webhook-Id"] for r in receiver.of("form")}
    assert len(ids) == 2  # each emit is a new submission, not a redelivery


def test_emit_form_without_data_sends_the_demo_submission(sandbox, receiver):
    sandbox.emit("form", "", {})
    assert receiver.of("form")[0]["body"] == {"form": "website", "fields": website.DEMO_FIELDS}


def test_emit_form_signed_with_another_secret_is_refused_by_the_receiver(sandbox):
    other = Receiver("whsec_" + "b3RoZXItc2VjcmV0LW9mLXRoZS1zZXJ2aWNlLTAx")
    try:
        record = sandbox.emit("form", "", SUBMISSION, url=f"{other.url}/webhooks/form")
        assert record["status"] == 401 and other.received[0]["verified"] is False
    finally:
        other.server.shutdown()
        other.server.server_close()


def test_emit_form_to_a_dead_receiver_records_the_error(sandbox):
    record = sandbox.emit("form", "", SUBMISSION, url="http://127.0.0.1:1/webhooks/form")
    assert record["status"].startswith("error: ")


def test_emit_form_without_url_is_400_and_the_website_has_no_state(sandbox):
    response = sandbox.http.post("/_sandbox/emit", json={"service": "form", "data": SUBMISSION})
    assert response.status_code == 400 and "--webhook-url" in response.json()["error"]
    assert "form" in sandbox.http.post("/_sandbox/emit", json={"service": "nope"}).json()["error"]
    assert set(sandbox.state()) == set(sandbox.running.sandbox.vendors)  # no "website" or "form" key
    assert sandbox.http.get("/webhooks/form").status_code == 404  # no API of its own on the sandbox's port


def test_console_shows_the_form_with_labels_and_purposes_from_the_yaml(sandbox):
    page = sandbox.http.get("/").raise_for_status().text
    assert "Submit the website contact form" in page and 'action="/_sandbox/console/form"' in page
    assert "<label>Email" in page and 'name="email" value="minta.peter@example.com"' in page
    assert '<option value="adatvaltozas">Adatváltozás bejelentése</option>' in page  # config categories
    assert "Simulate an inbound call" in page and "No tickets yet." in page
    assert 'http-equiv="refresh"' not in page  # a person may be editing the form
    assert 'http-equiv="refresh"' in sandbox.http.get("/?watch=1").text


def test_console_form_emits_and_redirects_back(sandbox, receiver):
    answer = sandbox.http.post("/_sandbox/console/form", data={**website.DEMO_FIELDS, "email": "new@example.com",
                                                               "unknown": "dropped"})
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/?watch=1")
    [delivery] = receiver.of("form")
    assert delivery["verified"] and delivery["body"]["fields"] == {**website.DEMO_FIELDS, "email": "new@example.com"}
    assert "answered 202" in sandbox.http.get(answer.headers["Location"]).text


def test_console_form_without_webhook_url_says_so(sandbox):
    answer = sandbox.http.post("/_sandbox/console/form", data=website.DEMO_FIELDS, follow_redirects=True)
    assert "Not sent" in answer.text and sandbox.http.get("/_sandbox/emitted").json() == []


def happyfox_ticket(sandbox) -> dict[str, Any]:
    creds = sandbox.credentials
    return sandbox.http.post("/api/1.1/json/tickets/", auth=(creds["happyfox_api_key"], creds["happyfox_auth_code"]),
                             json={"subject": "Teszt", "text": "Szöveg", "category": 3, "name": "Elek",
                                   "email": "elek@example.com"}).raise_for_status().json()


def test_console_close_goes_through_the_happyfox_api_and_its_webhook(sandbox, receiver):
    ticket = happyfox_ticket(sandbox)
    page = sandbox.http.get("/").text
    assert f'aria-label="Close ticket {ticket["display_id"]}"' in page
    sandbox.clear_calls()
    answer = sandbox.http.post(f"/_sandbox/console/happyfox/{ticket['id']}/close", follow_redirects=True)
    assert f"Closed HappyFox ticket {ticket['display_id']}" in answer.text
    stored = sandbox.state("happyfox")["tickets"][str(ticket["id"])]
    closed = next(s["id"] for s in sandbox.state("happyfox")["statuses"] if s["name"] == "Closed")
    assert stored["status"] == closed and stored["updates"][-1]["status_change"]["new_name"] == "Closed"
    assert [(c["method"], c["status"]) for c in sandbox.calls("happyfox")] == [("POST", 200)]  # via the API gate
    updated = wait_for(lambda: [r for r in receiver.of("happyfox") if r["body"]["status"]["name"] == "Closed"])
    assert len(updated) == 1 and updated[0]["body"]["id"] == ticket["id"]
    assert f'aria-label="Close ticket {ticket["display_id"]}"' not in sandbox.http.get("/").text


def test_console_close_of_an_unknown_ticket_says_so(sandbox):
    answer = sandbox.http.post("/_sandbox/console/happyfox/999999/close", follow_redirects=True)
    assert "HappyFox refused to close ticket 999999: 404" in answer.text


def test_console_call_simulates_an_inbound_call_with_its_webhooks(sandbox, receiver):
    answer = sandbox.http.post("/_sandbox/console/aircall/call", data={"raw_digits": "+36 30 111 2222"})
    assert answer.status_code == 303
    [call] = sandbox.state("aircall")["calls"].values()
    assert call["direction"] == "inbound" and call["raw_digits"] == "+36 30 111 2222"
    events = wait_for(lambda: len(receiver.of("aircall")) >= 2 and receiver.of("aircall"))
    assert [e["body"]["event"] for e in events] == ["call.created", "call.ended"]


def test_purposes_fall_back_when_the_yaml_is_unreadable(monkeypatch, tmp_path):
    website.purposes.cache_clear()
    monkeypatch.setenv("SWITCHBOARD_CONFIG", str(tmp_path / "missing.yaml"))
    try:
        assert website.purposes() == website.FALLBACK_PURPOSES
    finally:
        website.purposes.cache_clear()
    assert ("panasz", "Panasz") in website.purposes()
    assert httpx.__name__  # the module under test posts with httpx; nothing here patches it
