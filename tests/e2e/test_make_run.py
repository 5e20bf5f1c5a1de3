"""What "done" looks like for a user (README.md#set-up), as a newcomer sees it after `make run`: `switchboard run` as a
real subprocess with its sandbox, driven over real HTTP only. A website form submission becomes one HubSpot contact, one
HappyFox ticket, one mirrored HubSpot ticket and a confirmation mail carrying the ticket id; closing the ticket
in HappyFox sends exactly one survey mail; a call is logged in HubSpot. Then the same through the console page in
a real browser."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import SANDBOX_DEFAULTS, load_config

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config" / "switchboard.yaml")
CLOSED_STAGE = next(s.hubspot_stage for s in CONFIG.statuses.values() if s.closed)
SUBMISSION = {"form": "website", "fields": {
    "vezeteknev": "Próba", "keresztnev": "Anna", "email": "proba.anna@example.com", "cel": "hibabejelentes",
    "termek": "Crossec Norma", "rovid_leiras": "Nem működik a belépés", "reszletes_leiras": "Üres oldal."}}


def survey_mails(mail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in mail if "/survey/" in m["text"]]


def confirmation_mails(mail: list[dict[str, Any]], display_id: str) -> list[dict[str, Any]]:
    return [m for m in mail if display_id in m["text"] and "/survey/" not in m["text"]]


def associated(hubspot: dict[str, Any], contact_id: str) -> list[str]:
    """Ids of the HubSpot tickets associated with the contact (associations are stored once, either way)."""
    ids = []
    for link in hubspot["associations"]:
        ends = {str(link["from"][0]).rstrip("s"): str(link["from"][1]), str(link["to"][0]).rstrip("s"):
                str(link["to"][1])}
        if ends.get("contact") == contact_id and "ticket" in ends:
            ids.append(ends["ticket"])
    return ids


def test_form_to_ticket_to_closure_to_one_survey_and_a_logged_call(running):
    emitted = running.sandbox.post("/_sandbox/emit", json={"service": "form", "data": SUBMISSION})
    assert emitted.status_code == 200, emitted.text
    assert emitted.json()["status"] == 202  # the service stored the signed submission

    def mirrored() -> Any:
        hubspot, happyfox = running.state("hubspot"), running.state("happyfox")
        if len(hubspot["contacts"]) != 1 or len(happyfox["tickets"]) != 1 or not hubspot["tickets"]:
            return None
        contact_id = next(iter(hubspot["contacts"]))
        ticket = next(iter(happyfox["tickets"].values()))
        if not associated(hubspot, contact_id) or not confirmation_mails(running.mail(), ticket["display_id"]):
            return None
        return hubspot, ticket, contact_id

    hubspot, ticket, contact_id = running.until("contact, tickets and confirmation", mirrored)
    contact = hubspot["contacts"][contact_id]["properties"]
    assert contact["email"] == "proba.anna@example.com"
    assert len(hubspot["tickets"]) == 1
    assert associated(hubspot, contact_id) == list(hubspot["tickets"])
    confirmation = confirmation_mails(running.mail(), ticket["display_id"])
    assert len(confirmation) == 1 and confirmation[0]["to"] == ["proba.anna@example.com"]

    # Closed as a staff member closes it: through HappyFox's API; its smart rule tells the service.
    closed = next(s["id"] for s in running.state("happyfox")["statuses"] if s["name"] == "Closed")
    answer = running.sandbox.post(f"/api/1.1/json/ticket/{ticket['id']}/staff_update/",
                                  json={"staff": 1, "status": closed},
                                  auth=(SANDBOX_DEFAULTS["happyfox_api_key"], SANDBOX_DEFAULTS["happyfox_auth_code"]))
    assert answer.status_code == 200, answer.text
    surveys = running.until("the survey mail", lambda: survey_mails(running.mail()))
    assert ticket["display_id"] in surveys[0]["text"] and surveys[0]["to"] == ["proba.anna@example.com"]

    hubspot_ticket = next(iter(running.state("hubspot")["tickets"]))
    running.until("the HubSpot ticket closed", lambda: running.state("hubspot")["tickets"][hubspot_ticket]
                  ["properties"].get("hs_pipeline_stage") == CLOSED_STAGE)
    running.settled()  # late duplicates (a second webhook, a retried job) would show by now
    mail = running.mail()
    assert len(survey_mails(mail)) == 1
    assert len(confirmation_mails(mail, ticket["display_id"])) == 1
    state = running.sandbox.get("/_sandbox/state").json()
    assert set(state) == {"hubspot", "happyfox", "aircall", "gmail"}  # the website is no fake with state
    assert len(state["hubspot"]["tickets"]) == 1 and len(state["happyfox"]["tickets"]) == 1
    assert state["hubspot"]["tickets"][hubspot_ticket]["properties"]["hs_pipeline_stage"] == CLOSED_STAGE

    call = running.sandbox.post("/_sandbox/aircall/calls", json={"direction": "inbound",
                                                               "raw_digits": "+36 1 234 5678", "duration": 42})
    assert call.status_code == 201, call.text
    running.until("the call logged in HubSpot", lambda: running.state("hubspot")["calls"])
    assert "Traceback" not in running.process.text


def test_a_badly_signed_form_is_refused_and_changes_nothing(running):
    """The sandbox signs with the secret the service checks; a forged delivery to the same URL is a 401."""
    forged = httpx.post(f"{running.base}/webhooks/form", json=SUBMISSION, timeout=10,
                        headers={"webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time())),
                                 "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})
    assert forged.status_code == 401
    running.settled(quiet=0.5)
    assert running.state("happyfox")["tickets"] == {} and running.mail() == []


# ---------------------------------------------------------------- the console, in a real browser

@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(java_script_enabled=False)  # the console needs no JavaScript
    yield context.new_page()
    context.close()


@pytest.mark.browser
def test_console_submits_the_demo_form_and_closes_the_ticket(running, page):
    console = str(running.sandbox.base_url)
    assert page.goto(console + "/").status == 200
    assert page.get_by_label("Email").input_value() == "minta.peter@example.com"
    page.get_by_role("button", name="Submit the website contact form").click()
    page.wait_for_load_state()
    assert "answered 202" in page.get_by_role("status").inner_text()

    ticket = running.until("the ticket", lambda: next(iter(running.state("happyfox")["tickets"].values()), None))
    running.until("the confirmation", lambda: confirmation_mails(running.mail(), ticket["display_id"]))
    page.goto(console + "/")  # the refresh
    assert ticket["display_id"] in page.inner_text("body")

    page.get_by_role("button", name=f"Close ticket {ticket['display_id']}").click()
    page.wait_for_load_state()
    assert f"Closed HappyFox ticket {ticket['display_id']}" in page.get_by_role("status").inner_text()
    running.until("the survey mail", lambda: survey_mails(running.mail()))

    page.goto(console + "/")
    page.get_by_role("button", name="Simulate an inbound call").click()
    page.wait_for_load_state()
    running.until("the call logged in HubSpot", lambda: running.state("hubspot")["calls"])
    assert len(survey_mails(running.mail())) == 1
