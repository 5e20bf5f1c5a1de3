"""The Aircall, HappyFox and Gmail fakes answer every route they serve (every endpoint the connectors call, and
the listings an admin reads) in the vendor's documented shape, and an unknown path or a wrong method in the vendor's
JSON error shape, never Flask's HTML page (docs/vendors/aircall.md, happyfox.md, gmail.md).

Each vendor's test walks a table of requests, one or more per route; a last check compares the table with the fake's
own routes, so that a route added later without a shape check here fails the suite."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from core.settings import SANDBOX_GMAIL_TOKEN
from sandbox.gmail import add_message

AIRCALL_META = {"count", "total", "current_page", "per_page", "next_page_link", "previous_page_link"}
HAPPYFOX = "/api/1.1/json"
GMAIL = "/gmail/v1/users"
Check = Callable[[httpx.Response], Any]


def aircall_http(sandbox) -> httpx.Client:
    creds = sandbox.credentials
    return httpx.Client(base_url=sandbox.base_url, auth=(creds["aircall_api_id"], creds["aircall_api_token"]),
                        timeout=10)


def happyfox_http(sandbox) -> httpx.Client:
    creds = sandbox.credentials
    return httpx.Client(base_url=sandbox.base_url + HAPPYFOX,
                        auth=(creds["happyfox_api_key"], creds["happyfox_auth_code"]), timeout=10)


def gmail_http(sandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.base_url + GMAIL, timeout=10,
                        headers={"Authorization": f"Bearer {SANDBOX_GMAIL_TOKEN}"})


def run(http: httpx.Client, table: list[tuple[str, str, dict[str, Any], int, Check | None]]) -> set[tuple[str, str]]:
    """Each request of the table: its status, a JSON body (unless 204), its shape check. The (method, path) pairs."""
    asked = set()
    for method, path, kwargs, status, check in table:
        answer = http.request(method, path, **kwargs)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text[:300])
        if status == 204:
            assert answer.content == b""
        else:
            assert answer.headers["content-type"].startswith("application/json"), (method, path, answer.text[:200])
            if check is not None:
                check(answer)
        asked.add((method, http.base_url.path.rstrip("/") + "/" + path.lstrip("/")))  # as httpx sent it
    return asked


def routes(sandbox_server, blueprint: str) -> set[tuple[str, str]]:
    """The fake's own API routes (not its `/_sandbox/` controls) as (method, rule)."""
    return {(method, rule.rule) for rule in sandbox_server.app.url_map.iter_rules()
            if rule.endpoint.split(".")[0] == blueprint and not rule.rule.startswith("/_sandbox/")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def covered(asked: set[tuple[str, str]], rules: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The rules no request of the table reached."""
    def pattern(rule: str) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"<(?:int:)?[^>]+>", r"[^/]+", rule.replace("<path:unknown>", ".+")) + "$")
    return {(m, r) for m, r in rules if not any(m == am and pattern(r).match(ap) for am, ap in asked)}


# ---------------------------------------------------------------- Aircall

def aircall_list(resource: str, keys: set[str]) -> Check:
    def check(answer: httpx.Response) -> None:
        body = answer.json()
        assert set(body) == {resource, "meta"} and set(body["meta"]) == AIRCALL_META, body
        assert body["meta"]["count"] == len(body[resource]) and body["meta"]["per_page"] <= 50
        assert all(keys <= set(item) for item in body[resource]), body[resource][:1]
    return check


def wrapped(resource: str, keys: set[str]) -> Check:
    def check(answer: httpx.Response) -> None:
        assert list(answer.json()) == [resource] and keys <= set(answer.json()[resource])
    return check


def aircall_error(answer: httpx.Response) -> None:
    body = answer.json()
    assert body.get("error") or body.get("message"), body  # the application's or the edge's shape


CALL_KEYS = {"id", "direction", "status", "started_at", "answered_at", "ended_at", "duration", "raw_digits",
             "recording", "voicemail", "user", "contact", "number"}
CONTACT_KEYS = {"id", "first_name", "last_name", "phone_numbers", "emails", "is_shared"}
USER_KEYS = {"id", "name", "email", "available", "availability_status"}
NUMBER_KEYS = {"id", "name", "digits", "country"}


def test_aircall_fake_answers_every_route_in_aircalls_shapes(sandbox, sandbox_server):
    http = aircall_http(sandbox)
    voicemail = sandbox.http.post("/_sandbox/aircall/calls", json={
        "raw_digits": "+36 30 123 4567", "answered": False, "voicemail": True}).raise_for_status().json()["call"]
    recorded = sandbox.http.post("/_sandbox/aircall/calls", json={
        "raw_digits": "+36 30 123 4567"}).raise_for_status().json()["call"]
    contact = http.post("/v1/contacts", json={"first_name": "Kata", "phone_numbers": [
        {"label": "Mobile", "value": "+36 30 123 4567"}], "emails": [{"value": "kata@example.com"}]}).json()["contact"]
    phone_id, email_id = contact["phone_numbers"][0]["id"], contact["emails"][0]["id"]
    details = f"/v1/contacts/{contact['id']}"

    def replaced_in_place(answer: httpx.Response) -> None:
        phones = {p["id"]: p["value"] for p in answer.json()["contact"]["phone_numbers"]}
        assert phones[phone_id] == "+36 30 765 4321" and len(phones) == 2, phones

    user_id = next(iter(sandbox.state("aircall")["users"]))
    number_id = next(iter(sandbox.state("aircall")["numbers"]))
    table = [
        ("GET", "/v1/ping", {}, 200, lambda a: a.json() == {"ping": "pong"}),
        ("GET", "/v1/calls", {"params": {"per_page": 1, "order": "desc"}}, 200, aircall_list("calls", CALL_KEYS)),
        ("GET", "/v1/calls/search", {"params": {"phone_number": "+36301234567", "fetch_contact": "true"}}, 200,
         aircall_list("calls", CALL_KEYS)),
        ("GET", f"/v1/calls/{recorded['id']}", {"params": {"fetch_contact": "true"}}, 200, wrapped("call", CALL_KEYS)),
        ("PUT", f"/v1/calls/{recorded['id']}/archive", {}, 200, wrapped("call", CALL_KEYS)),
        ("DELETE", f"/v1/calls/{recorded['id']}/recording", {}, 204, None),
        ("DELETE", f"/v1/calls/{voicemail['id']}/voicemail", {}, 204, None),
        ("DELETE", f"/v1/calls/{voicemail['id']}/voicemail", {}, 404, aircall_error),  # gone already
        ("GET", "/v1/contacts", {"params": {"per_page": 50}}, 200, aircall_list("contacts", CONTACT_KEYS)),
        ("GET", "/v1/contacts/search", {"params": {"email": "kata@example.com"}}, 200,
         aircall_list("contacts", CONTACT_KEYS)),
        ("POST", "/v1/contacts", {"json": {"first_name": "No phone"}}, 400, aircall_error),
        ("GET", f"/v1/contacts/{contact['id']}", {}, 200, wrapped("contact", CONTACT_KEYS)),
        ("POST", f"/v1/contacts/{contact['id']}", {"json": {"last_name": "Kovács"}}, 200,
         wrapped("contact", CONTACT_KEYS)),
        ("GET", "/v1/users", {}, 200, aircall_list("users", USER_KEYS)),
        ("GET", f"/v1/users/{user_id}", {}, 200, wrapped("user", USER_KEYS)),
        ("GET", "/v1/users/1", {}, 404, aircall_error),
        ("GET", "/v1/tags", {}, 200, aircall_list("tags", {"id", "name"})),
        ("POST", f"/v1/calls/{recorded['id']}/tags", {"json": {"tags": [60692]}}, 204, None),
        ("POST", f"/v1/calls/{recorded['id']}/tags", {"json": {"tags": "60692"}}, 400, aircall_error),
        ("POST", f"/v1/calls/{recorded['id']}/comments", {"json": {"content": "Call back"}}, 204, None),
        ("POST", f"/v1/calls/{recorded['id']}/comments", {"json": {}}, 400, aircall_error),
        ("GET", "/v1/numbers", {}, 200, aircall_list("numbers", NUMBER_KEYS)),
        ("GET", f"/v1/numbers/{number_id}", {}, 200, wrapped("number", NUMBER_KEYS)),
        ("GET", "/v1/calls", {"params": {"page": "x"}}, 400, aircall_error),
        ("GET", "/v1/teams", {}, 404, aircall_error),                             # unknown path
        ("PUT", f"/v1/contacts/{contact['id']}", {"json": {}}, 405, aircall_error),  # update is a POST
        ("DELETE", "/v1/calls", {}, 405, aircall_error),
        # A contact's details (docs/vendors/aircall.md#contacts): its only phone cannot go, a value is replaced
        # in place, keeping its id.
        ("DELETE", f"{details}/phone_details/{phone_id}", {}, 422, aircall_error),
        ("POST", f"{details}/phone_details", {"json": {"label": "Home", "value": "+36 20 987 6543"}}, 201,
         wrapped("contact", CONTACT_KEYS)),
        ("PUT", f"{details}/phone_details/{phone_id}", {"json": {"value": "+36 30 765 4321"}}, 200,
         replaced_in_place),
        ("DELETE", f"{details}/phone_details/{phone_id}", {}, 204, None),
        ("POST", f"{details}/phone_details", {"json": {"label": "Home"}}, 400, aircall_error),
        ("POST", f"{details}/email_details", {"json": {"value": "kata.uj@example.com"}}, 201,
         wrapped("contact", CONTACT_KEYS)),
        ("PUT", f"{details}/email_details/{email_id}", {"json": {"value": "kata2@example.com"}}, 200,
         wrapped("contact", CONTACT_KEYS)),
        ("DELETE", f"{details}/email_details/{email_id}", {}, 204, None),
        ("PUT", f"{details}/email_details/{email_id}", {"json": {"value": "x@example.com"}}, 404, aircall_error),
        ("DELETE", f"/v1/contacts/{contact['id']}", {}, 204, None),
    ]
    asked = run(http, table)
    assert covered(asked, routes(sandbox_server, "aircall")) == set()
    assert http.get("/v1/calls").headers["X-AircallApi-Limit"]  # the rate headers on every answer
    wrong = http.put(f"/v1/contacts/{contact['id']}", json={})
    assert "POST" in wrong.headers["Allow"]


def test_aircall_lists_page_with_links(sandbox):
    http = aircall_http(sandbox)
    for n in range(3):
        http.post("/v1/contacts", json={"first_name": f"C{n}", "phone_numbers": [{"value": f"+3630123450{n}"}]})
    first = http.get("/v1/contacts", params={"per_page": 2}).json()
    assert first["meta"]["total"] == 3 and first["meta"]["next_page_link"] and first["meta"]["previous_page_link"] is None
    second = httpx.get(first["meta"]["next_page_link"], auth=http.auth).json()
    assert [c["first_name"] for c in second["contacts"]] == ["C2"] and second["meta"]["next_page_link"] is None
    assert http.get("/v1/contacts", params={"per_page": 500}).json()["meta"]["per_page"] == 50


def test_aircall_unauthenticated_is_refused_before_routing(sandbox):
    answer = httpx.get(f"{sandbox.base_url}/v1/teams")
    assert answer.status_code == 401 and answer.json() == {"message": "Unauthorized"}


# ---------------------------------------------------------------- HappyFox

def happyfox_page(keys: set[str]) -> Check:
    def check(answer: httpx.Response) -> None:
        body = answer.json()
        assert set(body) == {"page_info", "data"}, body
        assert set(body["page_info"]) == {"count", "start_index", "end_index", "last_index", "page_count"}
        assert body["page_info"]["count"] == len(body["data"])
        assert all(keys <= set(item) for item in body["data"]), body["data"][:1]
    return check


def bare_list(keys: set[str]) -> Check:
    def check(answer: httpx.Response) -> None:
        assert isinstance(answer.json(), list) and all(keys <= set(i) for i in answer.json())
    return check


def happyfox_object(keys: set[str]) -> Check:
    def check(answer: httpx.Response) -> None:
        assert keys <= set(answer.json()), answer.json()
    return check


def happyfox_not_found(answer: httpx.Response) -> None:
    assert answer.json() == {"error": "Cannot find the requested object"}


def happyfox_field_error(field: str) -> Check:
    def check(answer: httpx.Response) -> None:
        assert any(e["field"] == field and e["errors"] for e in answer.json()["error"]), answer.json()
    return check


TICKET_KEYS = {"id", "display_id", "subject", "status", "category", "priority", "user", "custom_fields",
               "last_modified", "last_updated_at", "updates"}
HF_USER_KEYS = {"id", "name", "email", "phones", "primary_phone", "custom_fields"}


def test_happyfox_fake_answers_every_route_in_happyfoxs_shapes(sandbox, sandbox_server):
    http = happyfox_http(sandbox)
    ticket = http.post("/tickets/", json={"subject": "Nem indul", "text": "A termék nem indul.", "category": 1,
                                          "email": "kata@example.com", "name": "Kata"}).json()
    user_id = ticket["user"]["id"]
    table = [
        ("GET", "/tickets/", {"params": {"status": "_all", "size": 1, "page": 1}}, 200, happyfox_page(TICKET_KEYS)),
        ("GET", "/tickets/", {"params": {"status": "_all", "q": 'contact:"kata@example.com"',
                                         "sort": "last_modifieda"}}, 200, happyfox_page(TICKET_KEYS)),
        ("GET", "/tickets/", {"params": {"size": 51}}, 400, happyfox_field_error("size")),
        ("POST", "/tickets/", {"json": {"subject": "x", "text": "y", "category": 1, "email": "a@example.com",
                                        "name": "A"}}, 200, happyfox_object(TICKET_KEYS)),
        ("POST", "/tickets/", {"json": {"text": "no subject"}}, 400, happyfox_field_error("subject")),
        ("GET", f"/ticket/{ticket['id']}/", {}, 200, happyfox_object(TICKET_KEYS)),
        ("GET", "/ticket/424242/", {}, 404, happyfox_not_found),
        ("POST", f"/ticket/{ticket['id']}/staff_update/", {"json": {"staff": 1, "status": 2}}, 200,
         happyfox_object(TICKET_KEYS)),
        ("POST", f"/ticket/{ticket['id']}/staff_pvtnote/", {"json": {"staff": 1, "text": "note"}}, 200,
         happyfox_object(TICKET_KEYS)),
        ("POST", f"/ticket/{ticket['id']}/subscribe/", {"json": {"data": [2], "staff_id": 1}}, 200, None),
        ("GET", "/users/", {"params": {"q": "email:kata@example.com"}}, 200, happyfox_page(HF_USER_KEYS)),
        ("GET", "/users/", {"params": {"size": 2, "page": 2}}, 200, happyfox_page(HF_USER_KEYS)),
        ("POST", "/users/", {"json": {"name": "Béla", "email": "bela@example.com"}}, 200,
         happyfox_object(HF_USER_KEYS)),
        ("GET", f"/user/{user_id}/", {}, 200, happyfox_object(HF_USER_KEYS)),
        ("GET", "/user/kata@example.com/", {}, 200, happyfox_object(HF_USER_KEYS)),
        ("POST", f"/user/{user_id}/", {"json": {"name": "Kata K."}}, 200, happyfox_object(HF_USER_KEYS)),
        ("GET", "/categories/", {}, 200, bare_list({"id", "name", "public", "prepopulate_cc"})),
        ("GET", "/statuses/", {}, 200, bare_list({"id", "name", "behavior"})),
        ("GET", "/priorities/", {}, 200, bare_list({"id", "name"})),
        ("GET", "/staff/", {}, 200, bare_list({"id", "name", "email"})),
        ("GET", "/ticket_custom_fields/", {}, 200, bare_list({"id", "name", "type", "choices"})),
        ("GET", "/user_custom_fields/", {}, 200, bare_list({"id", "name", "type", "choices"})),
        ("POST", f"/ticket/{ticket['id']}/delete/", {"json": {"staff_id": 1}}, 200,
         lambda a: a.json() == {"deleted_ticket": ticket["display_id"]}),
        # Unknown routes, wrong methods and slash-less paths: 404, HappyFox's JSON (docs/vendors/happyfox.md#errors)
        ("GET", "/nothing/", {}, 404, happyfox_not_found),
        ("POST", "/nothing/", {"json": {}}, 404, happyfox_not_found),
        ("DELETE", "/tickets/", {}, 404, happyfox_not_found),
        ("PUT", f"/user/{user_id}/", {"json": {}}, 404, happyfox_not_found),
        ("PATCH", "/users/", {"json": {}}, 404, happyfox_not_found),
        ("GET", f"/ticket/{ticket['id']}/staff_update/", {}, 404, happyfox_not_found),
        ("GET", "/tickets", {}, 404, happyfox_not_found),
    ]
    asked = run(http, table)
    assert covered(asked, routes(sandbox_server, "happyfox")) == set()


# ---------------------------------------------------------------- Gmail

def google_error(status: str) -> Check:
    def check(answer: httpx.Response) -> None:
        error = answer.json()["error"]
        assert error["code"] == answer.status_code and error["status"] == status and error["message"]
        assert error["errors"][0]["reason"] and error["errors"][0]["domain"]
    return check


def gmail_list(count: int, more: bool) -> Check:
    def check(answer: httpx.Response) -> None:
        body = answer.json()
        assert ("nextPageToken" in body) is more and isinstance(body["resultSizeEstimate"], int)
        assert len(body.get("messages", [])) == count  # `messages` absent when nothing matched
        assert all(set(m) == {"id", "threadId"} for m in body.get("messages", []))
    return check


def test_gmail_fake_answers_every_route_in_googles_shapes(sandbox, sandbox_server):
    http = gmail_http(sandbox)
    mailbox = sandbox.credentials["gmail_user"]
    ids = [add_message(sandbox.running.sandbox, "kata@example.com", mailbox, f"S{n}", "Szia") for n in range(3)]
    message_keys = {"id", "threadId", "labelIds", "snippet", "historyId", "internalDate", "sizeEstimate"}
    table = [
        ("GET", "me/profile", {}, 200, lambda a: a.json()["emailAddress"] == mailbox
         and a.json()["messagesTotal"] == 3 and {"threadsTotal", "historyId"} <= set(a.json())),
        ("GET", f"{mailbox}/profile", {}, 200, None),
        ("GET", "me/messages", {"params": {"maxResults": 2}}, 200, gmail_list(2, True)),
        ("GET", "me/messages", {"params": {"maxResults": 2, "pageToken": "2"}}, 200, gmail_list(1, False)),
        ("GET", "me/messages", {"params": {"q": "from:nobody@example.com"}}, 200, gmail_list(0, False)),
        ("GET", "me/messages", {"params": {"maxResults": 501}}, 400, google_error("INVALID_ARGUMENT")),
        ("GET", f"me/messages/{ids[0]}", {"params": {"format": "metadata", "metadataHeaders": "From"}}, 200,
         lambda a: message_keys <= set(a.json()) and [h["name"] for h in a.json()["payload"]["headers"]] == ["From"]),
        ("GET", f"me/messages/{ids[0]}", {"params": {"format": "raw"}}, 200, lambda a: a.json()["raw"]),
        ("GET", f"me/messages/{ids[0]}", {"params": {"format": "bogus"}}, 400, google_error("INVALID_ARGUMENT")),
        ("GET", "me/messages/0000", {}, 404, google_error("NOT_FOUND")),
        ("DELETE", f"me/messages/{ids[0]}", {}, 204, None),
        ("POST", "me/messages/batchDelete", {"json": {"ids": ids[1:]}}, 204, None),
        ("POST", "me/messages/batchDelete", {"json": {"ids": []}}, 400, google_error("INVALID_ARGUMENT")),
        ("GET", "ceo@example.com/messages", {}, 403, google_error("PERMISSION_DENIED")),
        ("GET", "me/labels", {}, 404, google_error("NOT_FOUND")),                 # unknown path
        ("PUT", "me/messages", {"json": {}}, 405, google_error("UNKNOWN")),       # wrong method
        ("POST", f"me/messages/{ids[0]}", {"json": {}}, 405, google_error("UNKNOWN")),
    ]
    asked = run(http, table)
    assert covered(asked, routes(sandbox_server, "gmail")) == set()
    assert "GET" in http.put("me/messages", json={}).headers["Allow"]
    assert sandbox.state("gmail")["messages"] == {}


# ---------------------------------------------------------------- the check itself

def test_the_route_check_notices_a_route_left_out(sandbox_server):
    rules = routes(sandbox_server, "aircall")
    assert ("GET", "/v1/users") in rules and not any(r.startswith("/_sandbox/") for _, r in rules)
    assert covered({("GET", "/v1/users")}, rules) == rules - {("GET", "/v1/users")}
    assert covered({("GET", "/v1/users/7")}, {("GET", "/v1/users/<int:user_id>")}) == set()


@pytest.mark.parametrize("path", ["/v1/teams", "/api/1.1/json/nothing/", "/gmail/v1/users/me/labels"])
def test_errors_outside_routes_are_json_for_every_vendor(sandbox, path):
    creds = sandbox.credentials
    auth = {"/v1/": (creds["aircall_api_id"], creds["aircall_api_token"]),
            "/api": (creds["happyfox_api_key"], creds["happyfox_auth_code"])}.get(path[:4])
    headers = {} if auth else {"Authorization": f"Bearer {SANDBOX_GMAIL_TOKEN}"}
    answer = httpx.get(sandbox.base_url + path, auth=auth, headers=headers)
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("application/json")


# ---------------------------------------------------------------- malformed bodies

MALFORMED = [[], "x", 1, {"phone_numbers": "x"}, {"phone_numbers": ["x"]}, {"first_name": {"a": 1}},
             {"subject": ["x"], "text": "t", "category": "x", "email": "a@b.c", "name": "A"},
             {"subject": "s", "text": "t", "category": 1, "email": ["a"], "name": "A"}, {"staff": "x"},
             {"staff": 1, "status": 999}, {"data": ["x"], "staff_id": 1}, {"name": "n", "email": "e@x.y", "phones": "x"},
             {"name": "n", "email": "e@x.y", "phones": [{"type": "m"}]}, {"name": 1, "email": 1}, {"ids": "x"},
             {"inputs": ["x"]}, {"filterGroups": "x"}, {"filterGroups": [{"filters": ["x"]}]}, {"sorts": [1]},
             {"properties": "x"}, {"associations": ["x"]}, {"associations": [{"to": {"id": "1"}, "types": ["x"]}]},
             {"objectId": {"a": 1}}, {"primaryObjectId": [1], "objectIdToMerge": {}}, {"limit": "x"}]


def test_malformed_bodies_are_4xx_in_the_vendors_shape_never_a_crash(sandbox):
    """Whatever a buggy client sends, each fake answers a JSON 4xx (a 500 would be retried as the vendor's fault),
    and stores nothing half-made."""
    creds = sandbox.credentials
    aircall = (creds["aircall_api_id"], creds["aircall_api_token"])
    happyfox = (creds["happyfox_api_key"], creds["happyfox_auth_code"])
    hubspot = {"Authorization": f"Bearer {creds['hubspot_access_token']}"}
    contact = httpx.post(f"{sandbox.base_url}/v1/contacts", auth=aircall,
                         json={"phone_numbers": [{"value": "+3611"}]}).json()["contact"]
    ticket = httpx.post(f"{sandbox.base_url}{HAPPYFOX}/tickets/", auth=happyfox, json={
        "subject": "s", "text": "t", "category": 1, "email": "a@example.com", "name": "A"}).json()
    targets = [("POST", "/v1/contacts", aircall, {}), ("POST", f"/v1/contacts/{contact['id']}", aircall, {}),
               *(("POST", f"{HAPPYFOX}{path}", happyfox, {}) for path in (
                   "/tickets/", f"/ticket/{ticket['id']}/staff_update/", f"/ticket/{ticket['id']}/staff_pvtnote/",
                   f"/ticket/{ticket['id']}/subscribe/", "/users/", f"/user/{ticket['user']['id']}/")),
               ("POST", f"{GMAIL}/me/messages/batchDelete", None, {"Authorization": f"Bearer {SANDBOX_GMAIL_TOKEN}"}),
               *(("POST", f"/crm/v3/objects/{path}", None, hubspot) for path in (
                   "contacts", "tickets", "calls", "contacts/search", "tickets/search", "contacts/batch/upsert",
                   "contacts/gdpr-delete", "contacts/merge"))]
    http = httpx.Client(base_url=sandbox.base_url, timeout=10)
    for method, path, auth, headers in targets:
        for body in MALFORMED:
            answer = http.request(method, path, auth=auth, json=body, headers=headers)
            assert answer.status_code < 500, (path, body, answer.status_code)
            if answer.status_code >= 400:
                assert answer.headers["content-type"].startswith("application/json"), (path, body)
    # The few bodies that were well-formed enough made objects; none that was refused left a half-made one.
    assert all(u["email"] is None or isinstance(u["email"], str) for u in sandbox.state("happyfox")["users"].values())
    assert all(isinstance(p["number"], str) for u in sandbox.state("happyfox")["users"].values() for p in u["phones"])
