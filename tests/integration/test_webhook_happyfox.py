"""`POST /webhooks/happyfox?token=...`: the smart-rule webhook, from fixtures and from the sandbox's fake."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from core.models import InboxEvent
from core.settings import Settings

from .delivery import deliver
from .flowkit import inbox_rows

FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "happyfox" / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def token(settings: Settings) -> str:
    return settings.env.secret("happyfox_webhook_secret")


def post(client: Any, body: Any, token: str | None) -> Any:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    url = "/webhooks/happyfox" + (f"?token={token}" if token is not None else "")
    return client.post(url, data=data, content_type="application/json")


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_each_fixture_is_stored_once(client: Any, token: str, name: str) -> None:
    first = deliver("happyfox", fixture(name), run=False)
    assert first.status == 202
    again = deliver("happyfox", fixture(name), run=False)
    assert again.status == 200 and again.inbox_ids == first.inbox_ids
    stored = inbox_rows("happyfox")
    assert len(stored) == 1 and stored[0].kind == "ticket"
    body = fixture(name)
    assert stored[0].payload["ticket_id"] == body.get("ticket", body)["id"]


def test_a_new_change_to_the_same_ticket_is_a_new_row(client: Any, token: str) -> None:
    ticket = fixture("ticket.created__plain")
    assert deliver("happyfox", ticket, run=False).status == 202
    changed = copy.deepcopy(ticket)
    changed["last_modified"] = "2026-11-24 10:00:00"
    assert deliver("happyfox", changed, run=False).status == 202
    assert deliver("happyfox", {"ticket": changed}, run=False).status == 200  # the wrapped shape is the same change
    stamps = [r.payload["ticket"]["last_modified"] for r in inbox_rows("happyfox")]
    assert stamps == ["2026-11-24 09:12:05", "2026-11-24 10:00:00"]


def test_changes_within_one_second_are_told_apart(client: Any, token: str) -> None:
    # last_modified has whole seconds: a ticket created and closed at once must still give two events.
    created = fixture("ticket.created__plain")
    closed = copy.deepcopy(created)
    closed["status"] = {"id": 7, "name": "Closed", "behavior": "completed"}
    closed["updates"].append({**closed["updates"][0], "update_id": closed["updates"][0]["update_id"] + 1})
    assert deliver("happyfox", created, run=False).status == 202
    assert deliver("happyfox", closed, run=False).status == 202
    assert len(inbox_rows("happyfox")) == 2


@pytest.mark.parametrize("given", [None, "", "wrong-secret"])
def test_bad_or_missing_token_is_401(client: Any, given: str | None) -> None:
    answer = post(client, fixture("ticket.created__plain"), given)
    assert answer.status_code == 401
    assert inbox_rows("happyfox") == []


@pytest.mark.parametrize("body", ["not json {", b"", json.dumps([1, 2]), json.dumps({"subject": "no id"}),
                                  json.dumps({"ticket": {"id": "abc"}})])
def test_malformed_body_is_400(client: Any, token: str, body: Any) -> None:
    answer = post(client, body, token)
    assert answer.status_code == 400
    assert answer.is_json and answer.get_json()["error"]
    assert inbox_rows("happyfox") == []


# ---------------------------------------------------------------- from the sandbox to a served app


def settled_rows(sandbox: Any) -> list[InboxEvent]:
    """The rows once the sandbox has sent every webhook it owed (each send waits for the receiver's answer)."""
    sandbox.wait_idle()
    return inbox_rows("happyfox")


def test_sandbox_emit_reaches_a_served_app(sandbox: Any, served: str) -> None:
    record = sandbox.emit("happyfox", "ticket.updated", fixture("ticket.updated__status_closed"),
                          url=f"{served}/webhooks/happyfox")
    assert record["status"] == 202
    (row,) = inbox_rows("happyfox")
    assert row.payload["ticket"]["status"]["name"] == "Closed"


def test_sandbox_emit_without_data_sends_the_event_fixture(sandbox: Any, served: str) -> None:
    record = sandbox.emit("happyfox", "ticket.updated", {}, url=f"{served}/webhooks/happyfox")
    assert record["status"] == 202
    (row,) = inbox_rows("happyfox")
    assert row.payload["ticket"] == fixture("ticket.updated__status_closed")


def test_api_changes_send_smart_rule_webhooks(sandbox: Any, settings: Settings, served: str) -> None:
    from connectors.happyfox import HappyFoxClient
    from connectors.policy import Policy

    sandbox.running.sandbox.webhook_url = served  # as `--webhook-url` does; the fixture unsets it
    creds = sandbox.credentials
    client = HappyFoxClient(sandbox.base_url, creds["happyfox_api_key"], creds["happyfox_auth_code"],
                            Policy("happyfox", timeout=2))
    ticket = client.create_ticket("Billing", "Invoice is wrong.", 4, "bela@example.com", name="Kiss Béla")
    client.update_ticket(ticket.id, 1, status=7, update="Corrected the invoice.")  # closing sends one too
    found = settled_rows(sandbox)
    assert sorted(r.payload["ticket"]["status"]["name"] for r in found) == ["Closed", "New"]
    assert {r.payload["ticket_id"] for r in found} == {ticket.id}
