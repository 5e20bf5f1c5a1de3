"""`POST /webhooks/form`: the website's contact form, signed as a Standard Webhook. Driven by the sample
submissions in `webhooks/form/fixtures/`: JSON deliveries through `delivery.deliver`, as every receiver test; the
multipart, raw-byte and forged ones signed here, since the signature scheme itself is what they test."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from core import settings as settings_module
from core import store
from core.models import InboxEvent
from webhooks.app import create_app

from .delivery import deliver

FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "form" / "fixtures"
MAX_BYTES = 4096  # a small attachment limit for these tests, so that "too large" needs no megabytes


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"submission__{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def app_settings(settings):
    config = settings.config.model_copy(update={"attachments_max_bytes": MAX_BYTES})
    return settings_module.use(settings.model_copy(update={"config": config}))


@pytest.fixture
def client(app_settings):
    return create_app(app_settings).test_client()


@pytest.fixture
def secret(app_settings) -> str:
    return app_settings.env.secret("form_webhook_secret")


def spec_signature(secret: str, msg_id: str, at: datetime, body: bytes) -> str:
    """The Standard Webhooks signature over raw bytes, as the spec defines it
    (docs/vendors/standard-webhooks.md#headers-and-signature)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed_content = f"{msg_id}.{int(at.timestamp())}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed_content, hashlib.sha256).digest()).decode()


def signed(secret: str, body: bytes, msg_id: str | None = None, at: datetime | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(timezone.utc)
    try:
        signature = Webhook(secret).sign(msg_id, at, body.decode("utf-8"))
    except UnicodeDecodeError:  # the package signs text only; a binary attachment needs the spec's byte form
        signature = spec_signature(secret, msg_id, at, body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}


def multipart(form: str, fields: dict[str, str], files: list[tuple[str, str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart body as a browser builds it (httpx encodes it); returns (body, content type)."""
    request = httpx.Request("POST", "http://form.invalid/", data={"form": form, **fields},
                            files=[(field, (name, data, ctype)) for field, name, data, ctype in files])
    return request.read(), request.headers["content-type"]


def fixture_multipart(name: str) -> tuple[bytes, str]:
    sample = fixture(name)
    files = [(f["field"], f["filename"], (FIXTURES / f["path"]).read_bytes(), f["content_type"])
             for f in sample["files"]]
    return multipart(sample["form"], sample["fields"], files)


def post(client, secret: str, body: bytes, content_type: str = "application/json", **sign: Any):
    return client.post("/webhooks/form", data=body, content_type=content_type, headers=signed(secret, body, **sign))


def post_json(client, secret: str, payload: dict[str, Any], **sign: Any):
    return post(client, secret, json.dumps(payload, ensure_ascii=False).encode(), **sign)


def inbox_rows() -> list[InboxEvent]:
    with store.session() as s:
        return list(s.scalars(select(InboxEvent).order_by(InboxEvent.id)))


# ---------------------------------------------------------------- accepted submissions

def test_website_form_json_is_stored_with_our_field_names(client, secret):
    response = deliver("form", fixture("website"), run=False, msg_id="msg_website_1")
    assert response.status == 202, response.answer
    [row] = inbox_rows()
    assert response.inbox_ids == [row.id]
    assert (row.source, row.kind, row.event_key, row.status) == ("form", "form", "msg_website_1", "pending")
    assert row.payload["form"] == "website"
    assert row.payload["fields"] == {
        "last_name": "Kovács", "first_name": "Éva", "email": "kovacs.eva@example.com", "purpose": "hibabejelentes",
        "product": "Crossec Norma", "summary": "Nem tudok belépni a Norma felületére",
        "details": "Tegnap óta a bejelentkezés után üres oldal jelenik meg.\nBöngésző: Firefox 132.",
    }
    assert row.payload["attachments"] == []


def test_product_form_variant(client, secret):
    response = deliver("form", fixture("product"), run=False)
    assert response.status == 202, response.answer
    [row] = inbox_rows()
    assert row.payload["form"] == "product"
    assert row.payload["fields"] == {"name": "Nagy Péter", "email": "nagy.peter@example.com",
                                     "summary": "Számla másolat kérése",
                                     "details": "Kérem, küldjék el a 2026. októberi számla másolatát."}


def test_form_name_defaults_to_the_default_form(client, secret):
    payload = fixture("website")
    del payload["form"]
    assert deliver("form", payload, run=False).status == 202
    assert inbox_rows()[0].payload["form"] == "website"


def test_multipart_with_one_attachment(client, secret):
    body, ctype = fixture_multipart("product_multipart")
    response = post(client, secret, body, ctype)
    assert response.status_code == 202, response.json
    [row] = inbox_rows()
    assert row.payload["fields"]["summary"] == "Hibaüzenet exportáláskor"
    [attachment] = row.payload["attachments"]
    assert attachment["filename"] == "naplo.txt" and attachment["content_type"] == "text/plain"
    assert attachment["size"] == (FIXTURES / "attachment.txt").stat().st_size


def test_multipart_with_two_attachments_in_one_field(client, secret):
    import base64
    body, ctype = fixture_multipart("website_multipart")
    response = post(client, secret, body, ctype)
    assert response.status_code == 202, response.json
    [row] = inbox_rows()
    assert row.payload["fields"]["last_name"] == "Szabó"
    stored = {a["filename"]: a for a in row.payload["attachments"]}
    assert set(stored) == {"szamla.pdf", "kepernyokep.png"}
    assert base64.b64decode(stored["szamla.pdf"]["data_b64"]) == (FIXTURES / "attachment.pdf").read_bytes()
    assert stored["kepernyokep.png"]["content_type"] == "image/png"


def test_same_webhook_id_twice_is_stored_once(client, secret):
    payload = fixture("website")
    first = deliver("form", payload, run=False, msg_id="msg_retry")
    again = deliver("form", payload, run=False, msg_id="msg_retry")  # a retry: same id, a new timestamp
    assert (first.status, again.status) == (202, 200)
    assert first.inbox_ids == again.inbox_ids
    assert len(inbox_rows()) == 1


# ---------------------------------------------------------------- refused content

def test_oversized_attachment_is_413_naming_the_field(client, secret):
    sample = fixture("website")
    body, ctype = multipart("website", sample["fields"], [("fajl", "nagy.pdf", b"%PDF" + b"0" * MAX_BYTES,
                                                           "application/pdf")])
    response = post(client, secret, body, ctype)
    assert response.status_code == 413
    assert response.json["error"] == "attachment too large"
    assert "nagy.pdf" in response.json["fields"]["fajl"]
    assert inbox_rows() == []


def test_request_beyond_the_body_limit_is_413_json(client, secret):
    sample = fixture("website")
    huge = b"0" * (MAX_BYTES + 1024 * 1024 + 10)
    body, ctype = multipart("website", sample["fields"], [("fajl", "huge.pdf", huge, "application/pdf")])
    response = post(client, secret, body, ctype)
    assert response.status_code == 413
    assert response.is_json and response.json["error"] and "attachments" in response.json["fields"]
    assert inbox_rows() == []


def test_disallowed_attachment_type_is_415(client, secret):
    sample = fixture("product")
    body, ctype = multipart("product", sample["fields"], [("csatolmany", "run.exe", b"MZ...",
                                                           "application/x-msdownload")])
    response = post(client, secret, body, ctype)
    assert response.status_code == 415
    assert "application/x-msdownload" in response.json["fields"]["csatolmany"]
    assert inbox_rows() == []


def test_missing_required_fields_are_each_named(client, secret):
    payload = fixture("website")
    for name in ("vezeteknev", "email", "rovid_leiras"):
        del payload["fields"][name]
    payload["fields"]["cel"] = "   "  # blank counts as missing
    del payload["fields"]["reszletes_leiras"]  # optional: not an error
    response = post_json(client, secret, payload)
    assert response.status_code == 400
    assert response.json["fields"] == {"vezeteknev": "required", "email": "required", "rovid_leiras": "required",
                                       "cel": "required"}
    assert inbox_rows() == []


def test_bad_email_is_400(client, secret):
    payload = fixture("product")
    payload["fields"]["email"] = "nagy.peter at example"
    response = post_json(client, secret, payload)
    assert response.status_code == 400
    assert response.json["fields"] == {"email": "not a single email address (no list, group, display name or quotes)"}


def test_unknown_category_and_non_text_values_are_400(client, secret):
    payload = fixture("website")
    payload["fields"]["cel"] = "barmi"
    payload["fields"]["termek"] = 42
    response = post_json(client, secret, payload)
    assert response.status_code == 400
    assert "must be one of" in response.json["fields"]["cel"]
    assert response.json["fields"]["termek"] == "must be text"


@pytest.mark.parametrize("form", ["no_such_form", 7, ["website"]])
def test_unknown_form_is_400(client, secret, form):
    payload = fixture("website")
    payload["form"] = form
    response = post_json(client, secret, payload)
    assert response.status_code == 400
    assert "website" in response.json["fields"]["form"]


@pytest.mark.parametrize("body, content_type", [
    (b"vezeteknev=Kovacs&email=a%40example.com", "application/x-www-form-urlencoded"),
    (b"hello", "text/plain"),
    (b"<form/>", "application/xml"),
])
def test_neither_json_nor_multipart_is_415(client, secret, body, content_type):
    response = post(client, secret, body, content_type)
    assert response.status_code == 415
    assert "error" in response.json and "fields" in response.json


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"form": "website", "fields": "x"}', b""])
def test_malformed_json_is_400(client, secret, body):
    response = post(client, secret, body)
    assert response.status_code == 400
    assert response.json["error"]
    assert inbox_rows() == []


# ---------------------------------------------------------------- authentication

def test_bad_signature_is_401(client, secret):
    body = json.dumps(fixture("website")).encode()
    other = "whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0wMTIzNDU="
    response = client.post("/webhooks/form", data=body, content_type="application/json",
                           headers=signed(other, body))
    assert response.status_code == 401
    assert inbox_rows() == []


def test_package_and_spec_signatures_agree():
    # The byte-level helper above signs exactly what the package signs, so both kinds of test body are fair.
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    at = datetime.now(timezone.utc)
    assert spec_signature(secret, "msg_1", at, "árvíztűrő".encode()) == Webhook(secret).sign("msg_1", at, "árvíztűrő")


def test_binary_attachment_body_is_verified_byte_for_byte(client, secret):
    png = (FIXTURES / "attachment.png").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        png.decode("utf-8")  # the point of this test: a body that is not valid UTF-8
    sample = fixture("website")
    body, ctype = multipart("website", sample["fields"], [("fajl", "kep.png", png, "image/png")])
    assert post(client, secret, body, ctype).status_code == 202
    headers = signed(secret, body)
    tampered = body.replace(png, png[:-1] + bytes([png[-1] ^ 1]))
    response = client.post("/webhooks/form", data=tampered, content_type=ctype, headers=headers)
    assert response.status_code == 401
    assert len(inbox_rows()) == 1


@pytest.mark.parametrize("signature", ["garbage", "v1,!!!not-base64!!!", "v1a,c2ln", ""])
def test_malformed_signature_header_is_401(client, secret, signature):
    body = json.dumps(fixture("website")).encode()
    headers = {**signed(secret, body), "webhook-signature": signature}
    response = client.post("/webhooks/form", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert inbox_rows() == []


def test_tampered_body_is_401(client, secret):
    body = json.dumps(fixture("website")).encode()
    headers = signed(secret, body)
    response = client.post("/webhooks/form", data=body.replace(b"Kov", b"Kow"), content_type="application/json",
                           headers=headers)
    assert response.status_code == 401
    assert inbox_rows() == []


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_401(client, secret, missing):
    body = json.dumps(fixture("website")).encode()
    headers = signed(secret, body)
    del headers[missing]
    response = client.post("/webhooks/form", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert inbox_rows() == []


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_timestamp_outside_five_minutes_is_401(client, secret, skew):
    response = post_json(client, secret, fixture("website"), at=datetime.now(timezone.utc) + skew)
    assert response.status_code == 401
    assert inbox_rows() == []


def test_replayed_request_with_stale_timestamp_is_401(client, secret):
    body = json.dumps(fixture("website")).encode()
    delivered_at = datetime.now(timezone.utc) - timedelta(minutes=10)
    captured = signed(secret, body, msg_id="msg_captured", at=delivered_at)
    # The original delivery (simulated as accepted back then), then an attacker replays it verbatim.
    assert post(client, secret, body, msg_id="msg_captured").status_code == 202
    replay = client.post("/webhooks/form", data=body, content_type="application/json", headers=captured)
    assert replay.status_code == 401
    # A captured request never delivered before is refused too, and nothing is stored for it.
    fresh_body = json.dumps(fixture("product")).encode()
    never_seen = signed(secret, fresh_body, msg_id="msg_never_seen", at=delivered_at)
    assert client.post("/webhooks/form", data=fresh_body, content_type="application/json",
                       headers=never_seen).status_code == 401
    assert [r.event_key for r in inbox_rows()] == ["msg_captured"]


def test_unset_secret_rejects_everything(client, secret, app_settings):
    env = app_settings.env.model_copy(update={"form_webhook_secret": None})
    settings_module.use(app_settings.model_copy(update={"env": env}))
    response = post_json(client, secret, fixture("website"))
    assert response.status_code == 401
    assert inbox_rows() == []
