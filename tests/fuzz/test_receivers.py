"""Property: no byte sequence, header value or JSON shape sent to a webhook receiver is answered with a 5xx, with
or without the sender's secret. A valid signature over garbage is the interesting case: it gets past every check
that guards the parser. In-process (the Flask test client), 7,700 cases here
(600 of them on PostgreSQL)."""
from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import strategies as st

from tests.conftest import drop_postgres_database, make_settings, postgres_database
from webhooks.app import create_app

from .kit import (answered, deep, form_headers, fixtures, fuzz, garbage, header_values, hubspot_headers, json_values,
                  mutated)

RECEIVERS = ("form", "aircall", "happyfox", "hubspot")
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "X-HubSpot-Signature-v3",
                     "X-HubSpot-Request-Timestamp", "X-HubSpot-Signature", "X-HubSpot-Signature-Version",
                     "Content-Type", "Authorization")
CONTENT_TYPES = st.sampled_from(["application/json", "multipart/form-data; boundary=x", "text/plain",
                                 "application/x-www-form-urlencoded"]) | header_values
CASES = 500


PAYLOADS = {
    "form": fixtures("form"),
    "aircall": fixtures("aircall"),
    "happyfox": fixtures("happyfox"),
    "hubspot": fixtures("hubspot"),
}


def post(client: Any, settings: Any, name: str, body: bytes, content_type: str = "application/json",
         headers: dict[str, str] | None = None, authentic: bool = True) -> Any:
    """POST `body` to a receiver; with `authentic`, as the real sender would sign or authenticate it."""
    headers = dict(headers or {})
    query = ""
    env = settings.env
    if authentic:
        if name == "form":
            headers.update(form_headers(env.secret("form_webhook_secret"), body))
        elif name == "hubspot":
            headers.update(hubspot_headers(env.secret("hubspot_client_secret"), body))
        elif name == "happyfox":
            query = "?token=" + env.secret("happyfox_webhook_secret")
    return client.post(f"/webhooks/{name}{query}", data=body, headers=headers, content_type=content_type)


def with_aircall_token(settings: Any, value: Any) -> Any:
    """Aircall authenticates by a token inside the body: put the real one into any object."""
    if isinstance(value, dict):
        return {**value, "token": settings.env.secret("aircall_webhook_token")}
    return value


@pytest.mark.parametrize("name", RECEIVERS)
def test_anything_from_anyone_is_a_4xx(client, settings, name):
    unauthenticated = st.tuples(garbage, st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), header_values),
                                st.text(max_size=30), CONTENT_TYPES)

    def check(case: tuple[bytes, dict[str, str], str, str]) -> None:
        body, headers, token, content_type = case
        headers.pop("Content-Type", None)
        response = client.post(f"/webhooks/{name}", query_string={"token": token}, data=body, headers=headers,
                               content_type=content_type)
        answered(response)
        assert response.status_code not in (200, 202)  # nothing is stored without the secret

    fuzz(unauthenticated, check, CASES)


@pytest.mark.parametrize("name", RECEIVERS)
def test_any_bytes_signed_with_the_real_secret_are_a_4xx(client, settings, name):
    def check(case: tuple[bytes, str]) -> None:
        body, content_type = case
        answered(post(client, settings, name, body, content_type))

    fuzz(st.tuples(garbage, CONTENT_TYPES), check, CASES)


@pytest.mark.parametrize("name", RECEIVERS)
def test_any_json_shape_signed_with_the_real_secret_is_stored_or_refused(client, settings, name):
    shapes = json_values | mutated(PAYLOADS[name])

    def check(value: Any) -> None:
        if name == "aircall":
            value = with_aircall_token(settings, value)
        answered(post(client, settings, name, json.dumps(value).encode()))

    fuzz(shapes, check, CASES)


@pytest.fixture
def postgresql(sandbox):
    """Settings on a PostgreSQL database of the test's own: it enforces column lengths and encodings that SQLite
    lets pass, so what the receivers store must fit there too."""
    from core import settings as settings_module
    from core import store
    url = postgres_database()
    loaded = settings_module.use(make_settings(url, sandbox))
    store.upgrade(url)
    yield loaded
    settings_module.use(None)
    drop_postgres_database(url)


@pytest.mark.postgres
@pytest.mark.parametrize("name", RECEIVERS)
def test_any_json_shape_signed_is_stored_or_refused_on_postgresql(postgresql, name):
    client = create_app(postgresql).test_client()
    shapes = json_values | mutated(PAYLOADS[name])

    def check(value: Any) -> None:
        if name == "aircall":
            value = with_aircall_token(postgresql, value)
        answered(post(client, postgresql, name, json.dumps(value).encode()))

    fuzz(shapes, check, 150)


@pytest.mark.parametrize("name", ["form", "hubspot"])
def test_any_signature_header_value_is_a_401(client, settings, name):
    """The headers a signature check reads, each set to any value a server could hand over."""
    names = SIGNATURE_HEADERS[:3] if name == "form" else SIGNATURE_HEADERS[3:7]
    body = json.dumps(PAYLOADS[name][0]).encode()

    def check(headers: dict[str, str]) -> None:
        response = client.post(f"/webhooks/{name}", data=body, headers=headers, content_type="application/json")
        answered(response, {401})

    fuzz(st.fixed_dictionaries({}, optional={h: header_values for h in names}), check, CASES)


@pytest.mark.parametrize("name", RECEIVERS)
def test_nesting_deep_enough_to_exhaust_a_recursive_parser_is_a_400(client, settings, name):
    def check(body: bytes) -> None:
        response = post(client, settings, name, body)  # Aircall's token is in the body: unreadable, so a 400
        answered(response, {400})
        assert response.get_json()["fields"] == {"body": "not valid JSON (UTF-8, at most 1024 levels deep)"}

    fuzz(deep, check, 25)

