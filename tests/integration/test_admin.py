"""`/admin/...`: staff tools behind `Authorization: Bearer ADMIN_TOKEN`; manual reports for the channels
Switchboard does not receive itself (post, fax, social media, in person)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core import settings as settings_module
from core import store
from core.models import InboxEvent

REPORT = {"channel": "post", "email": "Kiss.Anna@example.com", "first_name": "Anna", "last_name": "Kiss",
          "subject": "Levélben érkezett panasz", "details": "A számlán szereplő összeg hibás.",
          "category": "panasz", "language": "hu"}


@pytest.fixture
def auth(settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.env.secret('admin_token')}"}


def inbox_rows() -> list[InboxEvent]:
    with store.session() as s:
        return list(s.scalars(select(InboxEvent).order_by(InboxEvent.id)))


# ---------------------------------------------------------------- authentication

@pytest.mark.parametrize("path, method", [("/admin/tickets", "post"), ("/admin/inbox", "get")])
@pytest.mark.parametrize("header", [
    None,                                   # no header
    "Bearer wrong-token",
    "Basic c2FuZGJveC1hZG1pbi10b2tlbjo=",   # the right secret, the wrong scheme
    "Bearer",                               # a scheme and no token
    "sandbox-admin-token",                  # the token without a scheme
])
def test_staff_only(client, settings, path, method, header):
    headers = {"Authorization": header} if header else {}
    response = getattr(client, method)(path, json=REPORT, headers=headers)
    assert response.status_code == 401
    assert response.json == {"error": "unauthorized"}
    assert inbox_rows() == []


def test_right_token_with_the_wrong_scheme_is_refused(client, settings):
    token = settings.env.secret("admin_token")
    response = client.get("/admin/inbox", headers={"Authorization": f"Token {token}"})
    assert response.status_code == 401


def test_scheme_is_case_insensitive(client, settings):
    token = settings.env.secret("admin_token")
    assert client.get("/admin/inbox", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_unset_admin_token_refuses_everyone(client, settings):
    env = settings.env.model_copy(update={"admin_token": None})
    settings_module.use(settings.model_copy(update={"env": env}))
    for header in ("Bearer ", "Bearer None", "Bearer sandbox-admin-token"):
        assert client.get("/admin/inbox", headers={"Authorization": header}).status_code == 401


# ---------------------------------------------------------------- manual reports

def test_manual_report_is_stored(client, auth):
    response = client.post("/admin/tickets", json=REPORT, headers=auth)
    assert response.status_code == 202, response.json
    [row] = inbox_rows()
    assert response.json["id"] == str(row.id)
    assert (row.source, row.kind, row.status) == ("manual", "manual", "pending")
    assert row.payload["channel"] == "post"
    assert row.payload["subject"] == "Levélben érkezett panasz"
    assert row.payload["category"] == "panasz"
    assert "key" not in row.payload


def test_phone_only_report_with_defaults(client, auth):
    report = {"channel": "in_person", "phone": "+36 30 123 4567", "subject": "  Személyes bejelentés  "}
    assert client.post("/admin/tickets", json=report, headers=auth).status_code == 202
    [row] = inbox_rows()
    assert row.payload["subject"] == "Személyes bejelentés"  # whitespace stripped
    # No language given: the customer's earlier tickets decide, else hu (flows/intake/enquiry.py).
    assert (row.payload["category"], row.payload["language"]) == ("egyeb", None)


def test_same_key_twice_is_stored_once(client, auth):
    first = client.post("/admin/tickets", json={**REPORT, "key": "post-2026-11-24-001"}, headers=auth)
    again = client.post("/admin/tickets", json={**REPORT, "key": "post-2026-11-24-001", "subject": "changed"},
                        headers=auth)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json["id"] == again.json["id"]
    [row] = inbox_rows()
    assert row.event_key == "post-2026-11-24-001"
    assert row.payload["subject"] == REPORT["subject"]  # the first report stands


def test_without_key_each_report_is_new(client, auth):
    assert client.post("/admin/tickets", json=REPORT, headers=auth).status_code == 202
    assert client.post("/admin/tickets", json=REPORT, headers=auth).status_code == 202
    assert len(inbox_rows()) == 2


def test_invalid_report_is_400_field_by_field(client, auth):
    report = {"channel": "pigeon", "email": "not-an-email", "subject": "", "language": "de", "colour": "red"}
    response = client.post("/admin/tickets", json=report, headers=auth)
    assert response.status_code == 400
    assert response.json["error"] == "invalid report"
    assert set(response.json["fields"]) == {"channel", "email", "subject", "language", "colour"}
    assert inbox_rows() == []


def test_report_without_email_or_phone_is_400(client, auth):
    report = {"channel": "fax", "subject": "Fax érkezett"}
    response = client.post("/admin/tickets", json=report, headers=auth)
    assert response.status_code == 400
    assert "email or a phone" in " ".join(response.json["fields"].values())


@pytest.mark.parametrize("body", [None, "[1, 2]", "not json"])
def test_body_that_is_not_a_json_object_is_400(client, auth, body):
    response = client.post("/admin/tickets", data=body, content_type="application/json", headers=auth)
    assert response.status_code == 400
    assert response.json["fields"]
    assert inbox_rows() == []


def test_unknown_category_is_400(client, auth):
    response = client.post("/admin/tickets", json={**REPORT, "category": "nincs_ilyen"}, headers=auth)
    assert response.status_code == 400
    assert response.json["fields"] == {"category": "unknown category"}
    assert inbox_rows() == []


# ---------------------------------------------------------------- inbox listing

def test_inbox_lists_newest_first_and_filters_by_status(client, auth):
    client.post("/admin/tickets", json={**REPORT, "key": "a"}, headers=auth)
    client.post("/admin/tickets", json={**REPORT, "key": "b"}, headers=auth)
    with store.session() as s:
        s.scalars(select(InboxEvent).where(InboxEvent.event_key == "a")).one().status = "dead"
    listed = client.get("/admin/inbox", headers=auth).json
    assert [r["source"] for r in listed] == ["manual", "manual"]
    assert listed[0]["id"] > listed[1]["id"]
    assert {"id", "source", "kind", "status", "attempts", "last_error", "received_at"} <= set(listed[0])
    assert "payload" not in listed[0]  # no personal data in a listing
    dead = client.get("/admin/inbox?status=dead", headers=auth).json
    assert [r["status"] for r in dead] == ["dead"]
