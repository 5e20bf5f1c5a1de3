"""The HubSpot fake speaks HubSpot's own OpenAPI: every request HubSpotClient sends and every answer the fake
gives (successes and error bodies) is validated against HubSpot's published documents, copied into
`tests/fixtures/hubspot-openapi/` from the vendor specs so that the repository stands alone."""
from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from tenacity import wait_fixed
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from connectors.errors import Conflict, InvalidRequest, NotFound
from connectors.hubspot import HubSpotClient
from connectors.policy import Policy
from sandbox.server import create_app

SPECS = Path(__file__).resolve().parents[1] / "fixtures" / "hubspot-openapi"
# Longest prefix first decides which document describes a path.
DOCUMENTS = {"/crm/v3/objects/contacts": "contacts-v3.json", "/crm/v3/objects/tickets": "tickets-v3.json",
             "/crm/v3/objects/calls": "calls-v3.json", "/crm/v4/": "associations-v4.json",
             "/crm/v3/pipelines/": "pipelines-v3.json", "/crm/v3/properties/": "properties-v3.json"}


class Recorder:
    """WSGI middleware keeping each request and answer of the fake, bodies included."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exchanges: list[tuple[Request, Response]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        copy = {**environ, "wsgi.input": io.BytesIO(body)}
        response = Response.from_app(self.app, environ, buffered=True)
        response.get_data()  # keep the body for validation once it has been sent
        request = Request(copy)
        request.get_data()
        self.exchanges.append((request, response))
        return response(environ, start_response)


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder(create_app())
    server = make_server("127.0.0.1", 0, recorder, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", recorder
    server.shutdown()
    server.server_close()


def openapi(name: str, base_url: str) -> OpenAPI:
    spec = json.loads((SPECS / name).read_text())
    spec["servers"] = [{"url": base_url}]  # the fake's address instead of https://api.hubapi.com
    answers = [a for operations in spec["paths"].values() for operation in operations.values()
               if isinstance(operation, dict) for a in (operation.get("responses") or {}).values()]
    for answer in answers + list(spec["components"].get("responses", {}).values()):
        content = answer.get("content")
        if content == {}:  # "no body" (the 204s); openapi-core would demand one
            del answer["content"]
        elif content and "*/*" in content:  # the error answers: HubSpot's error body is JSON
            content["application/json"] = content.pop("*/*")
    return OpenAPI.from_dict(spec)


def exercise(client: HubSpotClient) -> None:
    """Every connector method, and the error answers the connector must read."""
    contact_id = client.upsert_contacts([{"email": "anna@example.com", "firstname": "Anna"},
                                         {"email": "bela@example.com", "phone": "+36301234567"}])[0]["id"]
    client.search_contacts(email="anna@example.com", phone="+36301234567")
    client.update_contact(contact_id, {"lastname": "Kovács"})
    client.get_contact(contact_id, ["email", "lastname"])
    ticket = client.create_ticket({"subject": "Help", "hs_pipeline_stage": "1", "sb_key": "k"}, contact_id)
    client.update_ticket(ticket.id, {"hs_pipeline_stage": "2"})
    client.get_ticket(ticket.id)
    client.find_ticket("sb_key", "k")
    list(client.tickets_modified_since(datetime.now(timezone.utc) - timedelta(hours=1)))
    call = client.create_call({"hs_timestamp": "2026-11-24T09:00:00Z"}, contact_id, ticket.id)
    client.find_call("hs_timestamp", "2026-11-24T09:00:00Z")
    client.associated_ids("contacts", contact_id, "tickets")
    client.associated_ids("calls", call.id, "tickets")
    client.pipelines("tickets")
    client.properties("contacts")
    with pytest.raises(Conflict):
        client.create_contact({"email": "anna@example.com"})
    with pytest.raises(InvalidRequest):
        client.create_ticket({"subject": "no stage"})
    with pytest.raises(NotFound):
        client.get_ticket("424242")
    client.archive_call(call.id)
    client.archive_ticket(ticket.id)
    client.archive_ticket("424242")
    other_id = client.create_contact({"firstname": "Cecil", "phone": "+36307654321"}).id
    client.merge_contacts(contact_id, other_id)
    client.merge_contacts(contact_id, other_id)  # 404: merged already
    client.gdpr_delete_contact(contact_id)
    client.gdpr_delete_contact(contact_id)


# HubSpot's documents declare OAuth 2 security, which openapi-core cannot check (it warns and skips it).
@pytest.mark.filterwarnings("ignore:Unsupported scheme type")
def test_requests_and_answers_follow_hubspots_openapi(recorded: tuple[str, Recorder]) -> None:
    base_url, recorder = recorded
    client = HubSpotClient(base_url, "sandbox-hubspot-token",
                           Policy("hubspot", timeout=2, attempts=1, backoff=wait_fixed(0)))
    exercise(client)
    documents = {name: openapi(name, base_url) for name in set(DOCUMENTS.values())}
    for request, response in recorder.exchanges:
        name = next(DOCUMENTS[p] for p in sorted(DOCUMENTS, key=len, reverse=True) if request.path.startswith(p))
        what = f"{request.method} {request.path} -> {response.status_code}"
        spec_request = WerkzeugOpenAPIRequest(request)
        try:
            documents[name].validate_request(spec_request)
            documents[name].validate_response(spec_request, WerkzeugOpenAPIResponse(response))
        except Exception as exc:
            pytest.fail(f"{what}: {exc!r} {getattr(exc, '__cause__', '')!r}\n{response.get_data(as_text=True)}")
    statuses = {r.status_code for _, r in recorder.exchanges}
    assert {200, 201, 204, 400, 404, 409} <= statuses, statuses
    covered = {(q.method, re.sub(r"/\d+", "/{id}", q.path)) for q, _ in recorder.exchanges}
    assert covered == {
        ("POST", "/crm/v3/objects/contacts/batch/upsert"), ("POST", "/crm/v3/objects/contacts/search"),
        ("POST", "/crm/v3/objects/contacts"), ("PATCH", "/crm/v3/objects/contacts/{id}"),
        ("GET", "/crm/v3/objects/contacts/{id}"), ("POST", "/crm/v3/objects/contacts/gdpr-delete"),
        ("POST", "/crm/v3/objects/contacts/merge"),
        ("POST", "/crm/v3/objects/tickets"), ("PATCH", "/crm/v3/objects/tickets/{id}"),
        ("GET", "/crm/v3/objects/tickets/{id}"), ("POST", "/crm/v3/objects/tickets/search"),
        ("DELETE", "/crm/v3/objects/tickets/{id}"), ("POST", "/crm/v3/objects/calls"),
        ("POST", "/crm/v3/objects/calls/search"), ("DELETE", "/crm/v3/objects/calls/{id}"),
        ("GET", "/crm/v4/objects/contacts/{id}/associations/tickets"),
        ("GET", "/crm/v4/objects/calls/{id}/associations/tickets"),
        ("GET", "/crm/v3/pipelines/tickets"), ("GET", "/crm/v3/properties/contacts")}


def test_the_documents_do_refuse_a_wrong_answer() -> None:
    # Proof that the check above can fail: an object without its id, and an error body without its category.
    from werkzeug.test import EnvironBuilder
    base_url = "http://127.0.0.1:9"
    document = openapi("contacts-v3.json", base_url)
    request = WerkzeugOpenAPIRequest(Request(EnvironBuilder(
        path="/crm/v3/objects/contacts/1", base_url=base_url, headers={"Authorization": "Bearer x"}).get_environ()))
    no_id = Response(json.dumps({"properties": {}, "createdAt": "2026-01-01T00:00:00Z",
                                 "updatedAt": "2026-01-01T00:00:00Z", "archived": False}),
                     200, mimetype="application/json")
    with pytest.raises(Exception, match="id"):
        document.validate_response(request, WerkzeugOpenAPIResponse(no_id))
    bad_error = Response(json.dumps({"status": "error", "message": "x"}), 404, mimetype="application/json")
    with pytest.raises(Exception):
        document.validate_response(request, WerkzeugOpenAPIResponse(bad_error))
