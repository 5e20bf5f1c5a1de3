"""`POST /webhooks/aircall`: the fixtures (docs/vendors/aircall.md#webhooks shapes) through the real app, forged and
replayed deliveries, and a call simulated in the sandbox arriving over real HTTP."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from flows import routes
from webhooks.app import create_app

from .delivery import deliver
from .flowkit import inbox_rows

FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "aircall" / "fixtures"


def fixture(name: str, token: str) -> dict:
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    payload["token"] = token
    return payload


@pytest.fixture
def token(settings) -> str:
    return settings.env.secret("aircall_webhook_token")


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_every_fixture_is_stored_once_without_its_token(client, token, name):
    payload = json.loads((FIXTURES / f"{name}.json").read_text())  # as Aircall sends it; deliver adds the token
    first = deliver("aircall", payload, run=False)
    if not routes.is_routed("aircall", payload["event"]):  # accepted and ignored (flows/routes.py)
        assert first.status == 200 and first.answer["ignored"] == 1 and inbox_rows("aircall") == []
        return
    assert first.status == 202, first.answer
    rows = inbox_rows("aircall")
    assert len(rows) == 1
    assert rows[0].event_key == f"{payload['event']}:{payload['data']['id']}" and rows[0].kind == payload["event"]
    assert "token" not in rows[0].payload and token not in json.dumps(rows[0].payload)
    assert rows[0].payload["data"]["id"] == payload["data"]["id"]

    again = deliver("aircall", payload, run=False)
    assert again.status == 200 and again.inbox_ids == first.inbox_ids
    assert len(inbox_rows("aircall")) == 1


def test_ended_and_voicemail_of_one_call_are_two_events(client, token):
    for name in ("call.ended__missed", "call.voicemail_left__inbound"):
        payload = json.loads((FIXTURES / f"{name}.json").read_text())
        payload["data"]["id"] = 777
        assert deliver("aircall", payload, run=False).status == 202
    assert [r.kind for r in inbox_rows("aircall")] == ["call.ended", "call.voicemail_left"]


@pytest.mark.parametrize("forged", ["wrong-token", "", None])
def test_wrong_or_missing_token_is_refused_and_nothing_stored(client, forged):
    payload = fixture("call.ended__answered_inbound", "x")
    if forged is None:
        del payload["token"]
    else:
        payload["token"] = forged
    answer = client.post("/webhooks/aircall", json=payload)
    assert answer.status_code == 401
    assert inbox_rows("aircall") == []


@pytest.mark.parametrize("body", [
    {"resource": "call", "event": "call.ended", "data": {"direction": "inbound"}},
    {"resource": "call", "event": "call.ended", "data": "not an object"},
    {"resource": "call", "data": {"id": 5}},
])
def test_malformed_payload_is_a_400_json_error(client, token, body):
    answer = client.post("/webhooks/aircall", json={**body, "token": token})
    assert answer.status_code == 400
    assert answer.get_json()["error"]
    assert inbox_rows("aircall") == []


def test_non_json_body_is_a_400(client):
    answer = client.post("/webhooks/aircall", data=b"event=call.ended", content_type="application/json")
    assert answer.status_code == 400 and answer.get_json()["error"]
    assert inbox_rows("aircall") == []


def test_simulated_call_is_delivered_to_the_served_app(settings, sandbox):
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sandbox.running.sandbox.webhook_url = f"http://127.0.0.1:{server.server_port}"
        made = sandbox.http.post("/_sandbox/aircall/calls", json={
            "direction": "inbound", "raw_digits": "+36 30 123 4567", "duration": 0,
            "answered": False, "voicemail": True}).raise_for_status().json()["call"]
        sandbox.wait_idle()  # both webhooks sent and answered
    finally:
        server.shutdown()
        server.server_close()
    rows = inbox_rows("aircall")
    # call.created is routed nowhere: acknowledged (200) and not stored.
    assert [r.event_key for r in rows] == [f"{e}:{made['id']}" for e in ("call.ended", "call.voicemail_left")]
    ended = rows[0].payload
    assert ended["resource"] == "call" and ended["data"]["voicemail"] == made["voicemail"]
    assert "token" not in ended
    emitted = sandbox.http.get("/_sandbox/emitted").json()
    assert [e["status"] for e in emitted] == [200, 202, 202]


def test_emitted_payloads_have_the_fixture_shapes(sandbox):
    """The sandbox's webhooks and the fixtures describe one shape: a drift in either fails here."""
    from sandbox.aircall import simulate_call
    call = simulate_call(sandbox.running.sandbox, "inbound", "+36 30 123 4567", 60)
    for path in FIXTURES.glob("*.json"):
        shape = json.loads(path.read_text())
        assert set(shape) == {"resource", "event", "timestamp", "token", "data"}, path.name
        assert set(shape["data"]) == set(call), path.name
