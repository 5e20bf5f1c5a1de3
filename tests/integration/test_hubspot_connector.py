"""HubSpotClient (official hubspot-api-client) against the sandbox's HubSpot fake over real HTTP: every method,
and each fault path."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from tenacity import wait_fixed

from connectors import pacing
from connectors.errors import Conflict, InvalidRequest, NotFound, RateLimited, Unauthorized, Unavailable
from connectors.hubspot import HubSpotClient
from connectors.policy import Policy

UPSERT = "/crm/v3/objects/contacts/batch/upsert"
MERGE = "/crm/v3/objects/contacts/merge"


def make_client(sandbox: Any, token: str | None = None, search_limit: Any = None, **policy: Any) -> HubSpotClient:
    options = {"timeout": 0.5, "attempts": 3, "backoff": wait_fixed(0.01), **policy}
    return HubSpotClient(sandbox.base_url, token or sandbox.credentials["hubspot_access_token"],
                         Policy("hubspot", **options), search_limit=search_limit)


@pytest.fixture
def hubspot(sandbox: Any) -> HubSpotClient:
    return make_client(sandbox)


def calls(sandbox: Any, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
    return [c for c in sandbox.calls("hubspot") if method in (None, c["method"]) and path in (None, c["path"])]


def contact(hubspot: HubSpotClient, email: str = "anna.kovacs@example.com", **properties: Any) -> str:
    return hubspot.upsert_contact({"email": email, "firstname": "Anna", "lastname": "Kovács", **properties})


# ---------------------------------------------------------------- contacts

def test_upsert_creates_then_updates_by_email(sandbox: Any, hubspot: HubSpotClient) -> None:
    first = hubspot.upsert_contacts([{"email": "Anna.Kovacs@Example.com", "firstname": "Anna"}])
    assert first[0]["new"] is True and first[0]["properties"]["email"] == "anna.kovacs@example.com"
    again = hubspot.upsert_contacts([{"email": "anna.kovacs@example.com", "lastname": "Kovács"}])
    assert again[0]["id"] == first[0]["id"] and again[0]["new"] is False
    stored = sandbox.state("hubspot")["contacts"][first[0]["id"]]["properties"]
    assert stored["firstname"] == "Anna" and stored["lastname"] == "Kovács"


def test_upsert_of_150_contacts_takes_two_calls(sandbox: Any, hubspot: HubSpotClient) -> None:
    results = hubspot.upsert_contacts([{"email": f"person{n}@example.com"} for n in range(150)])
    assert len({r["id"] for r in results}) == 150
    assert len(calls(sandbox, "POST", UPSERT)) == 2
    assert len(sandbox.state("hubspot")["contacts"]) == 150


def test_a_repeated_email_in_one_upsert_is_merged(sandbox: Any, hubspot: HubSpotClient) -> None:
    results = hubspot.upsert_contacts([{"email": "a@example.com", "firstname": "A"},
                                       {"email": "A@example.com", "lastname": "B"}])
    assert len(results) == 1
    assert sandbox.state("hubspot")["contacts"][results[0]["id"]]["properties"]["lastname"] == "B"


def test_search_contacts_by_email_and_by_either_phone(hubspot: HubSpotClient) -> None:
    anna = contact(hubspot, phone="+36301234567")
    bela = contact(hubspot, "bela@example.com", mobilephone="+36307654321")
    assert [c.id for c in hubspot.search_contacts(email="ANNA.KOVACS@example.com")] == [anna]
    assert [c.id for c in hubspot.search_contacts(phone="+36301234567")] == [anna]
    assert [c.id for c in hubspot.search_contacts(phone="+36307654321")] == [bela]
    assert hubspot.search_contacts(email="nobody@example.com") == []
    with pytest.raises(ValueError):
        hubspot.search_contacts()


def test_get_and_update_contact(sandbox: Any, hubspot: HubSpotClient) -> None:
    contact_id = contact(hubspot)
    updated = hubspot.update_contact(contact_id, {"phone": "+3611234567"})
    assert updated.prop("phone") == "+3611234567"
    fetched = hubspot.get_contact(contact_id, ["phone", "email"])
    assert fetched.prop("phone") == "+3611234567"
    assert fetched.prop("lastmodifieddate") >= fetched.created_at
    with pytest.raises(NotFound):
        hubspot.get_contact("999999")


def test_create_contact_conflict_carries_the_existing_id(hubspot: HubSpotClient) -> None:
    contact_id = contact(hubspot)
    with pytest.raises(Conflict) as caught:
        hubspot.create_contact({"email": "anna.kovacs@example.com"})
    assert caught.value.existing_id == contact_id and caught.value.status == 409


def test_gdpr_delete_removes_the_contact_and_its_links_not_its_tickets(sandbox: Any,
                                                                        hubspot: HubSpotClient) -> None:
    contact_id = contact(hubspot)
    ticket = hubspot.create_ticket({"subject": "Help", "hs_pipeline_stage": "1"}, contact_id)
    assert hubspot.gdpr_delete_contact(contact_id) == "deleted"
    state = sandbox.state("hubspot")
    assert contact_id not in state["contacts"] and state["associations"] == []
    assert ticket.id in state["tickets"]
    assert hubspot.gdpr_delete_contact(contact_id) == "gone"
    assert hubspot.archive_contact("424242") == "gone"


def test_merge_contacts_keeps_the_primary_and_retires_the_other(sandbox: Any, hubspot: HubSpotClient) -> None:
    older = hubspot.upsert_contact({"email": "anna@example.com", "firstname": "Anna"})
    newer = hubspot.create_contact({"email": "anni@example.com", "firstname": "Anni", "lastname": "Kovács",
                                    "phone": "+36301234567"}).id
    ticket = hubspot.create_ticket({"subject": "Help", "hs_pipeline_stage": "1"}, newer)
    merged = hubspot.merge_contacts(older, newer)
    assert merged is not None and merged.id == older
    # The primary's values stay current; the other's fill what it lacked (HubSpot's documented merge).
    assert merged.prop("firstname") == "Anna" and merged.prop("lastname") == "Kovács"
    kept = hubspot.get_contact(older, ["phone", "hs_additional_emails", "hs_merged_object_ids"]).properties
    assert kept["phone"] == "+36301234567" and kept["hs_additional_emails"] == "anni@example.com"
    assert kept["hs_merged_object_ids"] == newer
    with pytest.raises(NotFound):
        hubspot.get_contact(newer)
    assert [c.id for c in hubspot.search_contacts(phone="+36301234567")] == [older]
    assert hubspot.associated_ids("tickets", ticket.id, "contacts") == [older]
    assert newer not in sandbox.state("hubspot")["contacts"]
    assert hubspot.merge_contacts(older, newer) is None  # merged already: gone
    with pytest.raises(InvalidRequest):
        hubspot.merge_contacts(older, older)


def test_a_merge_whose_answer_is_lost_is_not_retried_inline(sandbox: Any, hubspot: HubSpotClient) -> None:
    older, newer = contact(hubspot), contact(hubspot, "bela@example.com")
    sandbox.fault(service="hubspot", method="POST", path=MERGE, status=503, times=1)
    with pytest.raises(Unavailable):
        hubspot.merge_contacts(older, newer)
    assert len(calls(sandbox, "POST", MERGE)) == 1


# ---------------------------------------------------------------- tickets

def test_create_ticket_with_its_contact_and_read_it_back(sandbox: Any, hubspot: HubSpotClient) -> None:
    contact_id = contact(hubspot)
    ticket = hubspot.create_ticket({"subject": "Cannot log in", "hs_pipeline_stage": "1",
                                    "hs_ticket_category": "PRODUCT_ISSUE", "switchboard_key": "t-1"}, contact_id)
    assert ticket.prop("hs_pipeline") == "0"
    assert hubspot.associated_ids("tickets", ticket.id, "contacts") == [contact_id]
    assert hubspot.associated_ids("contacts", contact_id, "tickets") == [ticket.id]
    link = sandbox.state("hubspot")["associations"][0]
    assert link["typeId"] == 16 and link["to"] == ["contacts", contact_id]
    fetched = hubspot.get_ticket(ticket.id, ["subject", "switchboard_key"])
    assert fetched.prop("switchboard_key") == "t-1"
    assert hubspot.find_ticket("switchboard_key", "t-1").id == ticket.id
    assert hubspot.find_ticket("switchboard_key", "t-2") is None


def test_update_ticket_moves_the_modified_date(hubspot: HubSpotClient) -> None:
    ticket = hubspot.create_ticket({"subject": "Printer", "hs_pipeline_stage": "1"})
    time.sleep(0.01)
    updated = hubspot.update_ticket(ticket.id, {"hs_pipeline_stage": "4"})
    assert updated.prop("hs_pipeline_stage") == "4"
    assert updated.raw["updatedAt"] > ticket.raw["updatedAt"]
    assert hubspot.get_ticket(ticket.id).prop("hs_lastmodifieddate") == updated.raw["updatedAt"]


def test_a_ticket_without_a_stage_is_refused(hubspot: HubSpotClient) -> None:
    with pytest.raises(InvalidRequest):
        hubspot.create_ticket({"subject": "No stage"})
    with pytest.raises(InvalidRequest):
        hubspot.create_ticket({"subject": "Bad stage", "hs_pipeline_stage": "99"})


def test_tickets_modified_since_pages_through_search(sandbox: Any, hubspot: HubSpotClient) -> None:
    old = hubspot.create_ticket({"subject": "old", "hs_pipeline_stage": "1"})
    time.sleep(0.02)
    since = datetime.now(timezone.utc)
    time.sleep(0.01)
    fresh = [hubspot.create_ticket({"subject": f"t{n}", "hs_pipeline_stage": "1"}).id for n in range(105)]
    found = [t.id for t in hubspot.tickets_modified_since(since)]
    assert sorted(found, key=int) == fresh and old.id not in found
    assert len(calls(sandbox, "POST", "/crm/v3/objects/tickets/search")) == 2  # pages of 100
    assert list(hubspot.tickets_modified_since(datetime.now(timezone.utc) + timedelta(hours=1))) == []
    with pytest.raises(ValueError):
        list(hubspot.tickets_modified_since(datetime(2026, 1, 1)))


def test_tickets_by_ids_reads_many_with_one_search_per_hundred(sandbox: Any, hubspot: HubSpotClient) -> None:
    ids = [hubspot.create_ticket({"subject": f"t{n}", "hs_pipeline_stage": str(1 + n % 4)}).id
           for n in range(150)]
    other = hubspot.create_ticket({"subject": "not asked for", "hs_pipeline_stage": "1"}).id
    sandbox.clear_calls()
    found = {t.id: t.prop("hs_pipeline_stage") for t in hubspot.tickets_by_ids(ids, ["hs_pipeline_stage"])}
    assert set(found) == set(ids) and other not in found
    assert found[ids[6]] == "3"
    assert len(calls(sandbox, "POST", "/crm/v3/objects/tickets/search")) == 2  # 100 ids, then 50
    assert list(hubspot.tickets_by_ids([])) == []


def test_tickets_modified_since_queries_again_past_the_result_cap(sandbox: Any, hubspot: HubSpotClient) -> None:
    since = datetime.now(timezone.utc)
    made = []
    for n in range(5):
        made.append(hubspot.create_ticket({"subject": f"t{n}", "hs_pipeline_stage": "1"}).id)
        time.sleep(0.002)  # distinct modification times
    hubspot.search_cap = 2  # HubSpot's is 10,000 results a query
    assert [t.id for t in hubspot.tickets_modified_since(since)] == made
    searches = calls(sandbox, "POST", "/crm/v3/objects/tickets/search")
    assert len(searches) > 2


def test_archive_ticket(sandbox: Any, hubspot: HubSpotClient) -> None:
    ticket = hubspot.create_ticket({"subject": "bye", "hs_pipeline_stage": "1"})
    assert hubspot.archive_ticket(ticket.id) == "deleted"
    assert sandbox.state("hubspot")["tickets"][ticket.id]["archived"] is True
    with pytest.raises(NotFound):
        hubspot.get_ticket(ticket.id)
    assert hubspot.archive_ticket("31337") == "gone"


# ---------------------------------------------------------------- calls, associations, discovery

def test_create_call_linked_to_contact_and_ticket(sandbox: Any, hubspot: HubSpotClient) -> None:
    contact_id = contact(hubspot)
    ticket = hubspot.create_ticket({"subject": "Call", "hs_pipeline_stage": "1"}, contact_id)
    call = hubspot.create_call({"hs_timestamp": "2026-11-24T09:00:00Z", "hs_call_direction": "INBOUND",
                                "aircall_call_id": "777"}, contact_id, ticket.id)
    assert {a["typeId"] for a in sandbox.state("hubspot")["associations"]} == {16, 194, 220}
    assert hubspot.associated_ids("calls", call.id, "contacts") == [contact_id]
    assert hubspot.associated_ids("tickets", ticket.id, "calls") == [call.id]
    assert hubspot.find_call("aircall_call_id", "777").id == call.id
    assert hubspot.archive_call(call.id) == "deleted"
    assert hubspot.find_call("aircall_call_id", "777") is None
    assert hubspot.archive_call(call.id) == "deleted"  # archived already: HubSpot answers 204 again
    assert hubspot.archive_call("9999") == "gone"


def test_a_call_needs_its_timestamp(hubspot: HubSpotClient) -> None:
    with pytest.raises(InvalidRequest):
        hubspot.create_call({"hs_call_title": "no time"}, contact(hubspot))


def test_pipelines_and_properties(hubspot: HubSpotClient) -> None:
    pipeline = hubspot.pipelines("tickets")[0]
    assert pipeline["id"] == "0" and [s["id"] for s in pipeline["stages"]] == ["1", "2", "3", "4"]
    assert pipeline["stages"][3]["metadata"]["ticketState"] == "CLOSED"
    names = {p["name"] for p in hubspot.properties("tickets")}
    assert {"subject", "hs_pipeline_stage", "hs_ticket_category"} <= names


def test_from_settings_uses_the_sandbox(settings: Any) -> None:
    client = HubSpotClient.from_settings(settings, pacer=pacing.MemoryPacer())
    assert client.search_limit == (10_000, 1)
    assert client.pipelines()[0]["id"] == "0"


def test_the_official_client_works_unchanged_against_the_fake(sandbox: Any) -> None:
    # The client's own models, deserialised from the fake's answers, as an integrator without our wrapper uses it.
    from hubspot import HubSpot
    from hubspot.crm.contacts import PublicObjectSearchRequest, SimplePublicObjectInputForCreate
    api = HubSpot(access_token=sandbox.credentials["hubspot_access_token"], host=sandbox.base_url)
    created = api.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "plain@example.com"}, associations=[]))
    assert created.id and created.properties["email"] == "plain@example.com" and created.created_at.tzinfo
    found = api.crm.contacts.search_api.do_search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "email", "operator": "EQ", "value": "plain@example.com"}]}],
        properties=["email"], sorts=["hs_object_id"], limit=10, after="0"))
    assert found.total == 1 and found.results[0].id == created.id
    assert api.crm.pipelines.pipelines_api.get_all("tickets").results[0].stages[3].label == "Closed"
    assert api.crm.contacts.basic_api.get_by_id(created.id).properties["email"] == "plain@example.com"


# ---------------------------------------------------------------- faults

def test_a_burst_of_429s_is_absorbed(sandbox: Any) -> None:
    client = make_client(sandbox, attempts=5)
    sandbox.fault(service="hubspot", method="POST", path=UPSERT, status=429, times=3, retry_after=0.05)
    assert client.upsert_contact({"email": "burst@example.com"})
    assert [c["status"] for c in calls(sandbox, "POST", UPSERT)] == [429, 429, 429, 200]


def test_429s_past_the_attempts_raise_rate_limited(sandbox: Any, hubspot: HubSpotClient) -> None:
    sandbox.fault(service="hubspot", path="/crm/v3/pipelines/*", status=429, times=5, retry_after=0.05)
    with pytest.raises(RateLimited) as caught:
        hubspot.pipelines()
    assert caught.value.retry_after == pytest.approx(0.05)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(sandbox: Any, hubspot: HubSpotClient, status: int) -> None:
    ticket_id = hubspot.create_ticket({"subject": "retry", "hs_pipeline_stage": "1"}).id
    sandbox.fault(service="hubspot", method="PATCH", path="/crm/v3/objects/tickets/*", status=status, times=2)
    assert hubspot.update_ticket(ticket_id, {"hs_pipeline_stage": "4"}).prop("hs_pipeline_stage") == "4"
    path = f"/crm/v3/objects/tickets/{ticket_id}"
    assert [c["status"] for c in calls(sandbox, "PATCH", path)] == [status, status, 200]


TICKETS = "/crm/v3/objects/tickets"


def posts_when_settled(sandbox: Any, path: str) -> list[dict[str, Any]]:
    """The POSTs to `path` once the fake has logged them: a dropped or delayed request is logged when the fake
    finishes it, which may be after the client gave up."""
    sandbox.wait_idle()
    return calls(sandbox, "POST", path)


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503}, {"drop": True}], ids=["500", "503", "drop"])
def test_a_ticket_create_that_fails_is_not_retried_inline(sandbox: Any, hubspot: HubSpotClient,
                                                          fault: dict) -> None:
    # HubSpot's create takes no idempotency key: a retried create could make a second ticket. The job's retry
    # searches by the key stamped on the ticket instead.
    sandbox.fault(service="hubspot", method="POST", path=TICKETS, times=1, **fault)
    with pytest.raises(Unavailable):
        hubspot.create_ticket({"subject": "once", "hs_pipeline_stage": "1"})
    assert len(posts_when_settled(sandbox, TICKETS)) == 1
    assert sandbox.state("hubspot")["tickets"] == {}


def test_a_ticket_create_that_times_out_but_happens_makes_one_ticket(sandbox: Any) -> None:
    client = make_client(sandbox, timeout=0.2)
    sandbox.fault(service="hubspot", method="POST", path=TICKETS, delay=0.6, times=1)
    with pytest.raises(Unavailable):
        client.create_ticket({"subject": "once", "hs_pipeline_stage": "1", "switchboard_key": "t-9"})
    assert len(posts_when_settled(sandbox, TICKETS)) == 1  # the fake created the ticket after the client gave up
    assert len(sandbox.state("hubspot")["tickets"]) == 1
    assert client.find_ticket("switchboard_key", "t-9") is not None  # what the job's retry finds


def test_a_ticket_create_answered_429_is_retried_and_makes_one_ticket(sandbox: Any, hubspot: HubSpotClient) -> None:
    sandbox.fault(service="hubspot", method="POST", path=TICKETS, status=429, times=1, retry_after=0.05)
    assert hubspot.create_ticket({"subject": "once", "hs_pipeline_stage": "1"}).id
    assert [c["status"] for c in calls(sandbox, "POST", TICKETS)] == [429, 201]
    assert len(sandbox.state("hubspot")["tickets"]) == 1


def test_contact_and_call_creates_are_not_retried_inline(sandbox: Any, hubspot: HubSpotClient) -> None:
    sandbox.fault(service="hubspot", method="POST", path="/crm/v3/objects/contacts", status=503, times=1)
    with pytest.raises(Unavailable):
        hubspot.create_contact({"email": "once@example.com"})
    assert len(calls(sandbox, "POST", "/crm/v3/objects/contacts")) == 1
    assert sandbox.state("hubspot")["contacts"] == {}
    contact_id = hubspot.create_contact({"email": "once@example.com"}).id
    sandbox.fault(service="hubspot", method="POST", path="/crm/v3/objects/calls", status=500, times=1)
    with pytest.raises(Unavailable):
        hubspot.create_call({"hs_timestamp": "2026-11-24T09:00:00Z"}, contact_id)
    assert len(calls(sandbox, "POST", "/crm/v3/objects/calls")) == 1
    assert sandbox.state("hubspot")["calls"] == {}


def test_an_upsert_is_idempotent_by_email_and_still_retried(sandbox: Any, hubspot: HubSpotClient) -> None:
    sandbox.fault(service="hubspot", method="POST", path=UPSERT, status=503, times=1)
    assert hubspot.upsert_contact({"email": "upsert@example.com"})
    assert [c["status"] for c in calls(sandbox, "POST", UPSERT)] == [503, 200]
    assert len(sandbox.state("hubspot")["contacts"]) == 1


def test_a_bad_token_is_raised_at_once(sandbox: Any) -> None:
    client = make_client(sandbox, token="wrong-token")
    with pytest.raises(Unauthorized) as caught:
        client.pipelines()
    assert "Authentication credentials not found" in caught.value.message
    assert len(calls(sandbox)) == 1


def test_a_slow_answer_times_out_and_is_retried_then_raised(sandbox: Any) -> None:
    client = make_client(sandbox, timeout=0.2, attempts=2)
    sandbox.fault(service="hubspot", path="/crm/v3/pipelines/*", delay=0.6, times=2)
    with pytest.raises(Unavailable):
        client.pipelines()
    sandbox.wait_idle()  # the fake finishes its delayed answers
    assert len(calls(sandbox, "GET", "/crm/v3/pipelines/tickets")) == 2


def test_a_dropped_connection_is_retried(sandbox: Any, hubspot: HubSpotClient) -> None:
    sandbox.fault(service="hubspot", path="/crm/v3/properties/*", drop=True, times=1)
    assert hubspot.properties("contacts")
    assert len(calls(sandbox, "GET", "/crm/v3/properties/contacts")) == 2


def test_the_fake_rate_limit_answers_429_when_exceeded(sandbox: Any) -> None:
    sandbox.limits(hubspot={"requests": 3, "per_seconds": 1})
    client = make_client(sandbox, attempts=1)
    with pytest.raises(RateLimited) as caught:
        for _ in range(4):
            client.pipelines()
    assert 0 < caught.value.retry_after <= 1
    assert [c["status"] for c in calls(sandbox)] == [200, 200, 200, 429]


def test_a_paced_client_stays_under_the_fake_rate_limit(sandbox: Any) -> None:
    # Paced at exactly the fake's limit: call n+3 goes a full window after call n was answered, so no jitter can
    # put it into call n's window (connectors/pacing.py; tests/unit/test_pacing.py simulates it exactly).
    sandbox.limits(hubspot={"requests": 3, "per_seconds": 1})
    client = make_client(sandbox, attempts=1, pacer=pacing.MemoryPacer(), requests=3, per_seconds=1)
    for _ in range(5):
        client.pipelines()
    assert [c["status"] for c in calls(sandbox)] == [200] * 5


def test_searches_are_paced_to_the_search_limit(sandbox: Any) -> None:
    client = make_client(sandbox, pacer=pacing.MemoryPacer(), requests=1000, search_limit=(20, 1.0))
    started = time.monotonic()
    for _ in range(5):
        client.search_contacts(email="x@example.com")
    assert time.monotonic() - started >= 4 / 20 * 0.9  # 5 searches need 4 intervals of 1/20 s


def test_the_fake_keeps_hubspots_search_and_batch_limits(sandbox: Any) -> None:
    auth = {"Authorization": f"Bearer {sandbox.credentials['hubspot_access_token']}"}
    search = "/crm/v3/objects/contacts/search"
    too_big = sandbox.http.post(search, json={"limit": 201}, headers=auth)
    assert too_big.status_code == 400 and too_big.json()["category"] == "VALIDATION_ERROR"
    assert sandbox.http.post(search, json={"after": "10000"}, headers=auth).status_code == 400
    groups = [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "x"}]}] * 6
    assert sandbox.http.post(search, json={"filterGroups": groups}, headers=auth).status_code == 400
    inputs = [{"idProperty": "email", "id": f"p{n}@example.com", "properties": {}} for n in range(101)]
    assert sandbox.http.post(UPSERT, json={"inputs": inputs}, headers=auth).status_code == 400
    twice = [{"idProperty": "email", "id": "a@example.com", "properties": {}}] * 2
    assert "Duplicate IDs" in sandbox.http.post(UPSERT, json={"inputs": twice}, headers=auth).json()["message"]
    sandbox.limits(hubspot={"requests": 1, "per_seconds": 10})
    sandbox.http.get("/crm/v3/pipelines/tickets", headers=auth)
    limited = sandbox.http.get("/crm/v3/pipelines/tickets", headers=auth)
    assert limited.status_code == 429 and limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0" and int(limited.headers["Retry-After"]) <= 10
