"""`GET /openapi.json` describes the service truthfully: every Flask route is in it and everything in it is a
route, it is valid OpenAPI 3, and schemathesis, generating requests from it (positive and negative, in-process over
WSGI), finds no 5xx, no undocumented status and no answer that breaks its documented schema. With the real
ADMIN_TOKEN, HappyFox token and signatures, so that generated bodies get past authentication."""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from webhooks import openapi, receiver
from webhooks.app import create_app

from .kit import form_headers, hubspot_headers

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 100  # per operation and generation mode
OPERATIONS = [(method.upper(), path) for path, item in openapi.document()["paths"].items()
              for method in item if method in ("get", "post", "put", "patch", "delete")]


def described_routes() -> set[tuple[str, str]]:
    return set(OPERATIONS)


def served_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, OpenAPI path) the app serves: Flask's routes, and `POST /webhooks/<name>` for each source the
    receiver in front of Flask answers (webhooks/receiver.py)."""
    routes = {("POST", f"/webhooks/{name}") for name in receiver.SOURCES}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":  # Flask's own, and this app has no static folder
            continue
        if rule.rule.startswith("/staff/"):  # the staff console: HTML pages behind sign-in, not an API (docs/staff.md)
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_every_route_is_described_and_nothing_else(settings):
    assert served_routes(create_app(settings)) == described_routes()


def test_the_document_is_valid_openapi_and_served_as_json(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.json == openapi.document()
    validate(response.json)


def _fixed(settings: Any, path: str) -> dict[str, Any]:
    """What a real client holds: the bearer token on /admin, the HappyFox URL token."""
    env = settings.env
    if path.startswith("/admin/"):
        return {"headers": {"Authorization": f"Bearer {env.secret('admin_token')}"}}
    if path == "/webhooks/happyfox":
        return {"query": {"token": env.secret("happyfox_webhook_secret")}}
    return {}


def _send(client: Any, settings: Any, case: Any) -> Any:
    """The form and HubSpot are signed over the exact bytes sent: serialised here, signed, posted in-process."""
    if case.path in ("/webhooks/form", "/webhooks/hubspot") and case.media_type == "application/json":
        body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()  # negative: any bytes
        env = settings.env
        headers = form_headers(env.secret("form_webhook_secret"), body) if case.path == "/webhooks/form" \
            else hubspot_headers(env.secret("hubspot_client_secret"), body)
        return client.post(case.path, data=body, headers=headers, content_type="application/json")
    return case.call()


@pytest.mark.parametrize("method, path", sorted(OPERATIONS), ids=lambda v: v)
def test_schemathesis_finds_no_5xx_and_no_undocumented_answer(client, settings, method, path):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", client.application)
    operation = schema[path][method].ok() if hasattr(schema[path][method], "ok") else schema[path][method]
    has_input = any(len(part) for part in (operation.body, operation.query, operation.headers))
    ran: list[int] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if has_input else (GenerationMode.POSITIVE,):
        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None,
                             suppress_health_check=list(HealthCheck))
        @given(operation.as_strategy(mode, **_fixed(settings, path)))
        def check(case: Any) -> None:
            ran.append(1)
            case.validate_response(_send(client, settings, case), checks=CHECKS)

        check()
    # An operation without input has one request to make; every other runs its examples in both modes.
    assert len(ran) >= (2 * EXAMPLES if has_input else 1)
