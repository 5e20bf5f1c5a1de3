"""Property: the staff API (with the real ADMIN_TOKEN and with any Authorization header) and the survey page answer
any body, query and path with a 4xx they chose, never a 5xx. In-process, 2,600 cases here."""
from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import strategies as st

from .kit import answered, fuzz, garbage, header_values, json_values, mutated, tricky

REPORT = {"channel": "post", "email": "kiss.anna@example.com", "first_name": "Anna", "last_name": "Kiss",
          "subject": "Levélben érkezett panasz", "details": "A számlán szereplő összeg hibás.",
          "category": "panasz", "language": "hu", "key": "k-1"}
query_values = st.text(max_size=30) | tricky
ADMIN = {"post": ["/admin/tickets", "/admin/customers/consent-withdrawal"],
         "get": ["/admin/inbox", "/admin/complaints"]}


@pytest.fixture
def admin(settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.env.secret('admin_token')}"}


@pytest.mark.parametrize("path", ADMIN["post"])
def test_any_body_from_staff_is_stored_or_refused(client, admin, path):
    shapes = garbage | json_values.map(lambda v: json.dumps(v).encode()) \
        | mutated([REPORT, {"email": "kiss.anna@example.com"}, {"phone": "+36301234567"}]).map(
            lambda v: json.dumps(v).encode())

    def check(body: bytes) -> None:
        answered(client.post(path, data=body, content_type="application/json", headers=admin))

    fuzz(shapes, check, 600)


@pytest.mark.parametrize("path", ADMIN["get"])
def test_any_query_from_staff_is_answered(client, admin, path):
    names = ["status", "event_type", "outcome", "quarter", "escalated", "x"]

    def check(query: dict[str, str]) -> None:
        response = client.get(path, query_string=query, headers=admin)
        answered(response)
        assert response.status_code in (200, 400)

    fuzz(st.dictionaries(st.sampled_from(names), query_values, max_size=5), check, 300)


def test_any_authorization_header_without_the_token_is_a_401(client):
    def check(case: tuple[str, str, str]) -> None:
        method, path, header = case
        response = client.open(path, method=method.upper(), headers={"Authorization": header}, json=REPORT)
        answered(response, {401})

    paths = st.sampled_from([(m, p) for m, ps in ADMIN.items() for p in ps])
    cases = st.tuples(paths, header_values | st.builds(lambda t: f"Bearer {t}", header_values)).map(
        lambda c: (c[0][0], c[0][1], c[1]))
    fuzz(cases, check, 300)


def test_any_survey_link_and_answer_is_a_page(client):
    """A token is the path itself, so 404 (not a link we signed) is the answer to garbage; never a 5xx."""
    link = st.text(st.characters(blacklist_characters="/?#\x00", blacklist_categories=("Cs",)), min_size=1,
                   max_size=120) | tricky.filter(lambda v: "\x00" not in v)
    answer = st.dictionaries(st.sampled_from(["score", "comment", "x"]), query_values | st.text(max_size=3000),
                             max_size=3)

    def check(case: tuple[str, str, dict[str, Any]]) -> None:
        method, token, form = case
        response = client.open(f"/survey/{token}", method=method, data=form if method == "POST" else None)
        answered(response, {200, 400, 404, 409, 410, 413})

    fuzz(st.tuples(st.sampled_from(["GET", "POST"]), link, answer), check, 800)
