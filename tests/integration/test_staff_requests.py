"""The console's data-subject requests (docs/staff.md) through Flask's test client, signed in at the sandbox's fake
Google: the privacy officer verifies, extends, confirms the manual tasks and completes; ops only look; the viewer
is refused; the overview counts the requests due; every view and action is audited under the person's address."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from core import store
from core.models import Audit
from flows.privacy import requests
from tests.integration.staffkit import OPS, PRIVACY, VIEWER, csrf, sign_in

EMAIL = "kerelmezo@example.net"


@pytest.fixture
def flow(settings, sandbox):
    return sandbox


def actions_by(actor: str) -> list[str]:
    with store.session() as s:
        return [a.action for a in s.scalars(select(Audit).where(Audit.actor == actor).order_by(Audit.id))]


def act(client: Any, request_id: int, action: str, **form: str) -> Any:
    return client.post(f"/staff/requests/{request_id}/{action}", data={"csrf": csrf(client), **form})


def test_the_privacy_officer_verifies_extends_confirms_and_completes(client: Any, flow: Any) -> None:
    request_id = requests.add("unspecified", email=EMAIL, channel="mail", actor="mail")
    sign_in(client, PRIVACY)
    listing = client.get("/staff/requests?lang=en").get_data(as_text=True)
    assert f'/staff/requests/{request_id}"' in listing and "awaiting verification" in listing
    assert EMAIL not in listing
    page = client.get(f"/staff/requests/{request_id}").get_data(as_text=True)
    assert 'id="verify"' in page and 'name="type"' in page and EMAIL not in page

    bad = act(client, request_id, "verify", method="a hunch")
    assert bad.status_code == 302 and requests.state_of(request_id) == "awaiting_verification"
    assert "unknown method" in client.get(bad.headers["Location"]).get_data(as_text=True)
    assert act(client, request_id, "verify", method="known_address", type="rectification").status_code == 302
    data = requests.detail(request_id)
    assert (data["state"], data["kind"], data["verified_by"]) == ("verified", "rectification", PRIVACY)

    assert act(client, request_id, "extend", reason="").status_code == 302
    assert requests.detail(request_id)["extended_at"] is None
    act(client, request_id, "extend", reason="several systems to correct")
    assert requests.detail(request_id)["extension_reason"] == "several systems to correct"

    page = client.get(f"/staff/requests/{request_id}?lang=en").get_data(as_text=True)
    assert 'id="confirm-it_contractor"' in page and "Mail the contractor" in page
    act(client, request_id, "complete", note="address corrected")
    assert requests.state_of(request_id) == "verified"  # the task is open
    act(client, request_id, "confirm", processor="it_contractor", note="ticket 77")
    act(client, request_id, "complete", note="address corrected in HubSpot and HappyFox")
    assert requests.state_of(request_id) == "done"
    acted = [a for a in actions_by(PRIVACY) if a.startswith("request.") and a != "request.viewed"]
    assert acted == ["request.verified", "request.extended", "request.task_confirmed", "request.completed"]
    assert actions_by(PRIVACY).count("request.viewed") >= 2
    with store.session() as s:
        details = json.dumps([a.detail for a in s.scalars(select(Audit).where(Audit.actor == PRIVACY))])
    assert EMAIL not in details


def test_ops_look_but_do_not_act_and_the_viewer_is_refused(client: Any, flow: Any) -> None:
    request_id = requests.add("erasure", email=EMAIL)
    sign_in(client, OPS)
    page = client.get(f"/staff/requests/{request_id}").get_data(as_text=True)
    assert "Kérelem" in page and 'id="verify"' not in page and 'id="refuse"' not in page
    assert act(client, request_id, "verify", method="in_person").status_code == 403
    assert act(client, request_id, "refuse", note="no").status_code == 403
    assert requests.state_of(request_id) == "awaiting_verification"
    assert "request.viewed" in actions_by(OPS)
    client.post("/staff/sign-out", data={"csrf": csrf(client)})
    sign_in(client, VIEWER)
    assert client.get("/staff/requests").status_code == 403
    assert client.get(f"/staff/requests/{request_id}").status_code == 403
    assert 'href="/staff/requests"' not in client.get("/staff/").get_data(as_text=True)


def test_the_overview_counts_requests_due_and_refusing_closes_one(client: Any, flow: Any) -> None:
    late = requests.add("access", email=EMAIL, received_at=datetime.now(timezone.utc) - timedelta(days=35))
    requests.add("access", email="later@example.net")
    sign_in(client, PRIVACY)
    overview = client.get("/staff/?lang=en").get_data(as_text=True)
    section = overview[overview.index('id="requests-due"'):overview.index('id="complaints-due"')]
    assert '<div class="big">1</div>' in section and f"/staff/requests/{late}" in section and "overdue" in section
    act(client, late, "refuse", note="identity could not be confirmed")
    assert requests.state_of(late) == "refused"
    for lang, word in (("hu", "Érintetti kérelmek"), ("en", "Data-subject requests")):
        assert word in client.get(f"/staff/requests?show=all&lang={lang}").get_data(as_text=True)
    assert client.get("/staff/requests/99999").status_code == 404
