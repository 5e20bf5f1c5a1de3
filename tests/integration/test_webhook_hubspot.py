"""`POST /webhooks/hubspot`: HubSpot subscription batches signed v3 (or v1/v2), from the fixtures and from the
sandbox's fake; the signer itself is checked against HubSpot's published test vectors
(docs/vendors/hubspot.md#signatures)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from connectors.hubspot import HubSpotClient
from connectors.policy import Policy
from core.models import InboxEvent
from core.settings import Settings
from flows import routes
from sandbox.hubspot.webhooks import batch, signature_headers

from .delivery import deliver
from .flowkit import inbox_rows

FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "hubspot" / "fixtures"
URL = "http://localhost/webhooks/hubspot"  # what the test client's request.url is


def fixture(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def secret(settings: Settings) -> str:
    return settings.env.secret("hubspot_client_secret")


def post(client: Any, body: Any, headers: dict[str, str] | None = None, *, secret: str | None = None,
         versions: tuple[str, ...] = ("v3",), timestamp_ms: int | None = None) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    if headers is None:
        headers = signature_headers(secret or "", "POST", URL, data, timestamp_ms, versions)
    return client.post("/webhooks/hubspot", data=data, headers=headers, content_type="application/json")


def three_events() -> list[dict[str, Any]]:
    return batch("contact.propertyChange", {"events": [
        {"objectId": 1001, "propertyName": "email", "propertyValue": "anna@example.com"},
        {"subscriptionType": "ticket.propertyChange", "objectId": 1002},
        {"subscriptionType": "contact.deletion", "objectId": 1003}]})


# ---------------------------------------------------------------- the signer, against HubSpot's vectors

VECTOR_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"


def test_signer_matches_hubspots_published_vectors() -> None:
    body, uri = "{'example_field':'example_value'}", "https://www.example.com/webhook_uri"
    v3 = signature_headers(VECTOR_SECRET, "POST", uri, body, 1693657560000, ("v3",))
    assert v3["X-HubSpot-Signature-v3"] == "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="
    assert v3["X-HubSpot-Request-Timestamp"] == "1693657560000"
    v1 = signature_headers(VECTOR_SECRET, "POST", uri, body, versions=("v1",))
    assert v1["X-HubSpot-Signature"] == "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
    v2 = signature_headers(VECTOR_SECRET, "POST", uri, body, versions=("v2",))
    assert v2["X-HubSpot-Signature"] == "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
    doc_body = ('[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
                '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
                '"changeFlag":"NEW","appId":54321}]')
    assert signature_headers(VECTOR_SECRET, "POST", uri, doc_body, versions=("v1",))["X-HubSpot-Signature"] \
        == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"


# ---------------------------------------------------------------- receiving

def test_a_v3_batch_is_stored_once_per_event(client: Any, secret: str) -> None:
    events = three_events()
    first = deliver("hubspot", events, run=False)
    # contact.deletion is routed nowhere (flows/routes.py): accepted, counted, not stored.
    assert first.status == 202 and len(first.inbox_ids) == 2 and first.answer["ignored"] == 1
    stored = inbox_rows("hubspot")
    assert [r.kind for r in stored] == ["contact.propertyChange", "ticket.propertyChange"]
    assert [r.event_key for r in stored] == [f"{e['subscriptionId']}:{e['eventId']}" for e in events[:2]]
    again = deliver("hubspot", events, run=False)  # HubSpot's retry of the same batch
    assert again.status == 200 and again.inbox_ids == first.inbox_ids
    assert len(inbox_rows("hubspot")) == 2


def test_a_batch_with_one_new_event_stores_only_that_one(client: Any, secret: str) -> None:
    events = three_events()
    assert deliver("hubspot", events[:1], run=False).status == 202
    assert deliver("hubspot", events, run=False).status == 202
    assert len(inbox_rows("hubspot")) == 2


def test_an_event_nobody_routes_is_accepted_ignored_and_counted(client: Any, secret: str) -> None:
    def ignored() -> float:
        return REGISTRY.get_sample_value("switchboard_inbox_received_total",
                                         {"source": "hubspot", "outcome": "ignored"}) or 0.0
    before = ignored()
    response = deliver("hubspot", fixture("contact.creation__new"), run=False)
    assert response.status == 200 and response.answer == {"id": None, "ids": [], "ignored": 1}
    assert inbox_rows("hubspot") == []
    assert ignored() == before + 1
    assert 'switchboard_inbox_received_total{outcome="ignored",source="hubspot"}' in client.get("/metrics").text


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_each_fixture_is_accepted(client: Any, secret: str, name: str) -> None:
    body = fixture(name)
    kind = body[0]["subscriptionType"]
    assert kind == name.split("__")[0]
    if not routes.is_routed("hubspot", kind):  # kept as evidence of the shape, for when a flow needs it
        assert deliver("hubspot", body, run=False).status == 200 and inbox_rows("hubspot") == []
        return
    assert deliver("hubspot", body, run=False).status == 202
    (row,) = inbox_rows("hubspot")
    assert row.kind == kind and row.payload == body[0]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_older_signature_versions_are_accepted(client: Any, secret: str, version: str) -> None:
    response = post(client, fixture("contact.propertyChange__email"), secret=secret, versions=(version,))
    assert response.status_code == 202 and len(inbox_rows("hubspot")) == 1


def test_behind_a_paas_router_the_public_url_is_the_signed_one(client: Any, secret: str) -> None:
    """HubSpot signs https://public-host/...; the router forwards plain HTTP with X-Forwarded-Proto and -Host,
    which the receiver trusts for the sources that sign their URL (one proxy's, webhooks/receiver.py)."""
    public = "https://switchboard.example.com/webhooks/hubspot"
    data = json.dumps(three_events()).encode()
    signed = signature_headers(secret, "POST", public, data, None, ("v3",))
    forwarded = {**signed, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "switchboard.example.com"}
    assert post(client, data, forwarded).status_code == 202
    assert post(client, data, signed).status_code == 401  # without the router's word the URL is not the signed one


def test_forged_signature_is_refused(client: Any, secret: str) -> None:
    assert post(client, three_events(), secret="not-the-secret").status_code == 401
    headers = signature_headers(secret, "POST", URL, json.dumps(three_events()).encode())
    tampered = three_events()  # signed one body, sent another
    assert post(client, tampered, headers).status_code == 401
    v1 = signature_headers("not-the-secret", "POST", URL, b"[]", versions=("v1",))
    assert post(client, fixture("contact.creation__new"), v1).status_code == 401
    assert inbox_rows("hubspot") == []


def test_missing_signature_is_refused(client: Any) -> None:
    response = post(client, three_events(), {})
    assert response.status_code == 401 and response.get_json() == {"error": "unauthorized"}
    assert inbox_rows("hubspot") == []


def test_stale_timestamp_is_refused(client: Any, secret: str) -> None:
    stale = int(time.time() * 1000) - 6 * 60 * 1000
    assert post(client, three_events(), secret=secret, timestamp_ms=stale).status_code == 401
    assert inbox_rows("hubspot") == []


def test_malformed_json_is_a_400(client: Any, secret: str) -> None:
    response = post(client, b'[{"eventId": 1,', secret=secret)
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]
    not_events = post(client, [{"eventId": "one"}], secret=secret)
    assert not_events.status_code == 400 and not_events.get_json()["error"]
    assert inbox_rows("hubspot") == []


# ---------------------------------------------------------------- from the sandbox, over real HTTP


def settled_rows(sandbox: Any) -> list[InboxEvent]:
    """The rows once the sandbox has sent every webhook it owed (each send waits for the receiver's answer)."""
    sandbox.wait_idle()
    return inbox_rows("hubspot")


def test_sandbox_emit_reaches_a_served_app(sandbox: Any, served: str) -> None:
    record = sandbox.emit("hubspot", "ticket.propertyChange",
                          {"objectId": 77, "propertyName": "hs_pipeline_stage", "propertyValue": "4"},
                          url=f"{served}/webhooks/hubspot")
    assert record["status"] == 202
    (row,) = inbox_rows("hubspot")
    assert row.kind == "ticket.propertyChange"
    assert row.payload["objectId"] == 77 and row.payload["propertyValue"] == "4"


def test_api_changes_send_property_change_webhooks(sandbox: Any, served: str) -> None:
    sandbox.running.sandbox.webhook_url = served  # as `--webhook-url` does; the fixture unsets it
    client = HubSpotClient(sandbox.base_url, sandbox.credentials["hubspot_access_token"],
                           Policy("hubspot", timeout=2))
    ticket = client.create_ticket({"subject": "Webhook", "hs_pipeline_stage": "1"})
    client.update_ticket(ticket.id, {"hs_pipeline_stage": "4"})
    found = settled_rows(sandbox)
    assert [(r.kind, r.payload["objectId"], r.payload["propertyName"], r.payload["propertyValue"])
            for r in found] == [("ticket.propertyChange", int(ticket.id), "hs_pipeline_stage", "4")]
    assert found[0].payload["changeSource"] == "INTEGRATION"  # an echo of an API write, as HubSpot marks it
