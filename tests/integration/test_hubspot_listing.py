"""List pages of the HubSpot fake (`GET /crm/v3/objects/{type}`, the official client's `basic_api.get_page`) for
every object type it stores, and HubSpot's JSON error body for every 4xx it answers, a wrong method or an unknown
path included; answers validated against HubSpot's OpenAPI documents as in test_hubspot_openapi.py."""
from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_schema_validator import OAS30Validator

from tests.integration.test_hubspot_openapi import DOCUMENTS, SPECS, Recorder, openapi, recorded  # noqa: F401

TOKEN = "sandbox-hubspot-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TYPES = ("contacts", "tickets", "calls")


def official(base_url: str) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=base_url, retry=False)


def api(client: HubSpot, object_type: str) -> Any:
    return {"contacts": client.crm.contacts, "tickets": client.crm.tickets, "calls": client.crm.objects.calls}[
        object_type].basic_api


def make(base_url: str, object_type: str, n: int) -> dict[str, Any]:
    properties = {"contacts": {"email": f"list{n}@example.com", "firstname": f"N{n}"},
                  "tickets": {"subject": f"Ticket {n}", "hs_pipeline_stage": "1"},
                  "calls": {"hs_timestamp": "2026-11-24T09:00:00Z", "hs_call_title": f"Call {n}"}}[object_type]
    answer = httpx.post(f"{base_url}/crm/v3/objects/{object_type}", json={"properties": properties}, headers=AUTH)
    assert answer.status_code == 201, answer.text
    return answer.json()


def error_schema_check(body: dict[str, Any]) -> None:
    """HubSpot's `Error` schema (any of the documents: they share it), $refs resolved within the document."""
    spec = json.loads((SPECS / "contacts-v3.json").read_text())
    OAS30Validator({**spec["components"]["schemas"]["Error"], "components": spec["components"]}).validate(body)


def validate_all(base_url: str, recorder: Recorder, since: int) -> set[int]:
    """Every exchange from `since` on validated against its OpenAPI document; statuses seen."""
    documents = {name: openapi(name, base_url) for name in set(DOCUMENTS.values())}
    for request, response in recorder.exchanges[since:]:
        what = f"{request.method} {request.full_path} -> {response.status_code}"
        name = next((DOCUMENTS[p] for p in sorted(DOCUMENTS, key=len, reverse=True) if request.path.startswith(p)),
                    None)
        spec_request = WerkzeugOpenAPIRequest(request)
        try:
            if name is None or response.status_code in (404, 405) and "route" in response.get_data(as_text=True) \
                    or response.status_code == 405:
                # Not an operation of any document (an unknown path or method): the body is still HubSpot's Error.
                error_schema_check(json.loads(response.get_data()))
                assert response.mimetype == "application/json"
            else:
                documents[name].validate_response(spec_request, WerkzeugOpenAPIResponse(response))
        except Exception as exc:
            pytest.fail(f"{what}: {exc!r}\n{response.get_data(as_text=True)[:500]}")
    return {r.status_code for _, r in recorder.exchanges[since:]}


@pytest.mark.filterwarnings("ignore:Unsupported scheme type")
@pytest.mark.parametrize("object_type", TYPES)
def test_get_page_pages_through_every_object_type(recorded, object_type):
    base_url, recorder = recorded
    since = len(recorder.exchanges)
    made = [make(base_url, object_type, n) for n in range(6)]
    archived = made[1]
    assert httpx.delete(f"{base_url}/crm/v3/objects/{object_type}/{archived['id']}", headers=AUTH).status_code == 204
    live_ids = [o["id"] for o in made if o is not archived]
    basic = api(official(base_url), object_type)

    ids, after, pages = [], None, 0
    while True:
        page = basic.get_page(limit=2, after=after, archived=False, properties=["hs_object_id"])
        pages += 1
        ids += [o.id for o in page.results]
        assert all(o.archived is False and o.properties["hs_object_id"] == o.id for o in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert [i for i in ids if i in live_ids] == live_ids  # in id order, none twice, the archived one left out
    assert archived["id"] not in ids and pages >= 3

    gone = basic.get_page(archived=True, limit=100)
    assert archived["id"] in [o.id for o in gone.results] and all(o.archived for o in gone.results)
    assert all(o.archived_at is not None for o in gone.results)
    statuses = validate_all(base_url, recorder, since)
    assert 200 in statuses


@pytest.mark.filterwarnings("ignore:Unsupported scheme type")
def test_get_page_properties_history_and_associations(recorded):
    base_url, recorder = recorded
    since = len(recorder.exchanges)
    contact = make(base_url, "contacts", 100)
    ticket = httpx.post(f"{base_url}/crm/v3/objects/tickets", headers=AUTH, json={
        "properties": {"subject": "Linked", "hs_pipeline_stage": "1"},
        "associations": [{"to": {"id": contact["id"]},
                          "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}]}]}).json()
    client = official(base_url)
    page = client.crm.contacts.basic_api.get_page(limit=100, properties=["email", "firstname"],
                                                   properties_with_history=["firstname"], associations=["tickets"])
    found = next(o for o in page.results if o.id == contact["id"])
    assert found.properties["email"] == "list100@example.com" and found.properties["firstname"] == "N100"
    assert found.properties_with_history["firstname"][0].value == "N100"
    assert [a.id for a in found.associations["tickets"].results] == [ticket["id"]]
    assert found.associations["tickets"].results[0].type == "contact_to_ticket"
    plain = client.crm.contacts.basic_api.get_page(limit=100)
    shown = next(o for o in plain.results if o.id == contact["id"])
    assert set(shown.properties) <= {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                                     "lastname"}  # the defaults when none are named
    assert shown.associations is None
    validate_all(base_url, recorder, since)


@pytest.mark.filterwarnings("ignore:Unsupported scheme type")
def test_every_4xx_is_hubspots_json_error(recorded):
    base_url, recorder = recorded
    since = len(recorder.exchanges)
    contact = make(base_url, "contacts", 200)
    asked = [
        ("GET", "/crm/v3/objects/contacts?limit=101", None, 400),
        ("GET", "/crm/v3/objects/contacts?limit=ten", None, 400),
        ("GET", "/crm/v3/objects/contacts?archived=maybe", None, 400),
        ("GET", "/crm/v3/objects/contacts?after=abc", None, 400),
        ("GET", "/crm/v3/objects/deals", None, 404),                      # a type the fake does not store
        ("PUT", f"/crm/v3/objects/contacts/{contact['id']}", {"properties": {}}, 405),
        ("DELETE", "/crm/v3/objects/contacts", None, 405),
        ("GET", "/crm/v3/objects/contacts/search", None, 404),            # search is POST only: read as an id
        ("GET", "/crm/v3/nothing/here", None, 404),
        ("POST", "/crm/v4/objects/contacts/1/associations/tickets/batch/nothing", {}, 404),
        ("POST", "/crm/v3/objects/contacts", "not json", 400),
        ("GET", "/crm/v4/objects/contacts/1/associations/tickets?limit=x", None, 400),
        ("POST", "/crm/v3/objects/tickets/search", {"limit": "many"}, 400),
    ]
    for method, path, body, status in asked:
        kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
        answer = httpx.request(method, f"{base_url}{path}", headers=AUTH, **kwargs)
        assert answer.status_code == status, (method, path, answer.text)
        assert answer.headers["content-type"].startswith("application/json"), (method, path)
        error = answer.json()
        assert error["status"] == "error" and error["correlationId"] and error["category"], error
        error_schema_check(error)
        if status == 405:
            assert answer.headers["Allow"]
    # Authentication comes first, as at HubSpot: an unknown path without a token is a 401, in the same shape.
    unauthenticated = httpx.get(f"{base_url}/crm/v3/nothing/here")
    assert unauthenticated.status_code == 401 and unauthenticated.json()["category"] == "INVALID_AUTHENTICATION"
    statuses = validate_all(base_url, recorder, since)
    assert {400, 401, 404, 405} <= statuses


def test_the_official_client_reads_a_list_error(recorded):
    from hubspot.crm.contacts import ApiException
    base_url, _ = recorded
    with pytest.raises(ApiException) as raised:
        official(base_url).crm.contacts.basic_api.get_page(limit=500)
    assert raised.value.status == 400
    assert re.search(r"between 1 and 100", json.loads(raised.value.body)["message"])


def test_pages_outside_crm_keep_their_own_answers(recorded):
    base_url, _ = recorded
    assert httpx.get(f"{base_url}/_sandbox/nothing").headers["content-type"].startswith("text/html")
