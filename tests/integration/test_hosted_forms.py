"""The hosted forms at `/forms/<name>` (webhooks/forms.py), over HTTP: built from the YAML mapping in Hungarian and
English, embeddable only where the YAML allows, validated by the webhook's own validation (each field named),
CSRF-guarded, a honeypot and a per-address rate limit, the consent checkbox, and one inbox event (source form) and
one ticket however often the same form is sent; the thank-you page shows the ticket id once it exists."""
from __future__ import annotations

import html
import io
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core import settings as settings_module
from core import store
from core.models import InboxEvent
from core.settings import HostedFormSpec
from webhooks.app import create_app

from .flowkit import objects, run, tickets

FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "form" / "fixtures"
ORIGIN = "http://localhost"   # the Flask test client's host


@pytest.fixture
def client(settings: Any) -> Any:
    return create_app(settings).test_client()


def opened(client: Any, name: str = "website", **headers: str) -> tuple[str, str]:
    """GET the form; (its token, the page)."""
    page = client.get(f"/forms/{name}", headers=headers)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    return re.search(r'name="token" value="([^"]+)"', text).group(1), text


def website(token: str, **changes: Any) -> dict[str, Any]:
    data = {"token": token, "vezeteknev": "Kovács", "keresztnev": "Kata", "email": "kata.kovacs@example.com",
            "cel": "hibabejelentes", "termek": "Crossec Norma", "rovid_leiras": "A belépés hibát ad",
            "reszletes_leiras": "Bejelentkezéskor 500-as hiba.", "consent": "yes"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def post(client: Any, data: dict[str, Any], name: str = "website", **headers: str) -> Any:
    return client.post(f"/forms/{name}", data=data, content_type="multipart/form-data",
                       headers={"Origin": ORIGIN, **headers})


def inbox() -> list[InboxEvent]:
    with store.session() as s:
        rows = list(s.scalars(select(InboxEvent).order_by(InboxEvent.id)))
        s.expunge_all()
        return rows


def thanked(answer: Any) -> str:
    """Which event a redirect's thank-you link names (its signed payload, without the signing time)."""
    return answer.headers["Location"].split("/thanks/")[1].split(".")[0]


def errors(page: Any) -> dict[str, str]:
    """The field errors the page shows beside each field: {posted name: message}."""
    text = page.get_data(as_text=True)
    return {m.group(1): html.unescape(m.group(2)) for m in re.finditer(r'<p class="error" id="e-([^"]+)">([^<]+)</p>',
                                                                        text)}


def test_the_page_is_built_from_the_yaml_in_hungarian_by_default(client):
    _, page = opened(client)
    assert '<html lang="hu">' in page and "Kapcsolatfelvétel" in page
    for posted in ("vezeteknev", "keresztnev", "email", "cel", "termek", "rovid_leiras", "reszletes_leiras", "fajl"):
        assert f'<label for="f-{posted}">' in page  # every field has its label
    assert 'id="f-nyelv"' not in page  # the language is the page's own, not a question
    assert '<option value="panasz">Panasz</option>' in page and "<option>GDPR Segédanyagok</option>" in page
    assert 'type="checkbox" id="f-consent" name="consent" value="yes" required' in page
    assert 'href="https://www.example.com/adatvedelem"' in page


def test_english_by_query_or_accept_language(client):
    _, by_query = opened(client, "website?lang=en")
    assert '<html lang="en">' in by_query and "Contact us" in by_query and ">Complaint</option>" in by_query
    _, by_header = opened(client, "product", **{"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in by_header and "Product enquiry" in by_header
    for posted in ("nev", "email", "targy", "uzenet", "csatolmany"):
        assert f'<label for="f-{posted}">' in by_header


def test_it_may_be_framed_only_by_the_origins_the_yaml_names(client, settings):
    page = client.get("/forms/website")
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://www.example.com" in policy
    assert "X-Frame-Options" not in page.headers and page.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in page.headers  # nothing for a third-party iframe to keep
    config = settings.config.model_copy(update={"hosted_forms": HostedFormSpec(frame_ancestors=[])})
    settings_module.use(settings.model_copy(update={"config": config}))
    assert "frame-ancestors 'none'" in client.get("/forms/website").headers["Content-Security-Policy"]


def test_unknown_form_is_404(client):
    assert client.get("/forms/nope").status_code == 404


def test_a_submission_is_one_inbox_event_of_source_form_and_becomes_a_ticket(client, sandbox):
    token, _ = opened(client)
    answer = post(client, website(token))
    assert answer.status_code == 303 and "/forms/website/thanks/" in answer.headers["Location"]
    [event] = inbox()
    assert (event.source, event.kind, event.status) == ("form", "form", "pending")
    assert event.event_key.startswith("hosted:")
    assert event.payload["fields"] == {
        "last_name": "Kovács", "first_name": "Kata", "email": "kata.kovacs@example.com", "purpose": "hibabejelentes",
        "product": "Crossec Norma", "summary": "A belépés hibát ad", "details": "Bejelentkezéskor 500-as hiba.",
        "language": "hu", "consent": "yes"}  # the checkbox, as the YAML maps the form's consent field
    assert event.payload["consent"] is True and event.payload["via"] == "hosted"

    waiting = client.get(answer.headers["Location"])
    assert waiting.status_code == 200 and 'http-equiv="refresh"' in waiting.get_data(as_text=True)
    assert 'id="ticket-id"' not in waiting.get_data(as_text=True)

    assert run(event.id) == "done"
    [ticket] = tickets()
    shown = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert f'<p class="ticket" id="ticket-id">{ticket.told_id}</p>' in shown and ticket.told_id
    assert 'http-equiv="refresh"' not in shown
    assert any(ticket.told_id in m["subject"] + m["text"] for m in sandbox.mail())  # the same id was mailed


def test_a_double_click_or_a_resubmit_is_one_event_and_one_ticket(client, sandbox):
    token, _ = opened(client)
    first = post(client, website(token))
    second = post(client, website(token))  # the second click, or Back and send again
    assert first.status_code == second.status_code == 303
    assert thanked(first) == thanked(second)
    [event] = inbox()
    run(event.id)
    assert thanked(post(client, website(token))) == thanked(first)  # after it ran, too
    assert len(inbox()) == 1 and len(tickets()) == 1 and len(objects(sandbox, "happyfox", "tickets")) == 1


def test_the_thanks_page_stops_refreshing_when_the_event_is_dead(client, sandbox):
    sandbox.fault(service="happyfox", method="POST", path="/api/1.1/json/tickets/", status=400, times=1)
    token, _ = opened(client)
    answer = post(client, website(token))
    [event] = inbox()
    assert run(event.id) == "dead"
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page and "e-mailben küldjük el" in page


def test_a_forged_thanks_link_is_404(client):
    assert client.get("/forms/website/thanks/MQ.forged.signature").status_code == 404


def test_two_forms_are_two_tickets(client, sandbox):
    for _ in range(2):
        token, _ = opened(client)
        assert post(client, website(token)).status_code == 303
    assert len(inbox()) == 2


def test_each_invalid_field_is_named_beside_it_and_the_values_are_kept(client):
    token, _ = opened(client)
    answer = post(client, website(token, vezeteknev="", email="not an address", cel="nincs ilyen",
                                  rovid_leiras="x" * 251, consent=None))
    assert answer.status_code == 400
    assert errors(answer) == {"vezeteknev": "kötelező mező",
                              "email": "érvényes e-mail-címet adjon meg (például nev@example.com)",
                              "cel": "válasszon a listából", "rovid_leiras": "legfeljebb 250 karakter lehet",
                              "consent": "a hozzájárulás kötelező"}
    text = answer.get_data(as_text=True)
    assert 'aria-invalid="true" aria-describedby="e-email"' in text
    assert '<a href="#f-vezeteknev">Vezetéknév: kötelező mező</a>' in text
    assert 'value="Kata"' in text and "Bejelentkezéskor 500-as hiba." in text  # nothing typed is lost
    assert inbox() == []


def test_english_errors(client):
    token, _ = opened(client, "product?lang=en")
    answer = post(client, {"token": token, "lang": "en", "nev": "Kata", "email": "", "targy": "", "uzenet": "x",
                           "consent": "yes"}, name="product?lang=en")
    assert answer.status_code == 400
    assert errors(answer) == {"email": "required", "targy": "required"}


def test_the_hosted_form_and_the_signed_webhook_refuse_the_same_fields(client, settings):
    """Both paths share webhooks/form/source.py: the same input, the same fields named."""
    from .flowkit import signed
    token, _ = opened(client)
    bad = {"vezeteknev": "", "email": "a@b@c", "cel": "nincs", "termek": "Másik"}
    hosted = errors(post(client, website(token, **bad)))
    body, headers = signed(settings.env.secret("form_webhook_secret"),
                           {"form": "website", "fields": {k: v for k, v in website("", **bad).items()
                                                          if k not in ("token", "consent")}})
    hook = client.post("/webhooks/form", data=body, headers={**headers, "Content-Type": "application/json"})
    assert hook.status_code == 400
    assert set(hook.get_json()["fields"]) == set(hosted) == {"vezeteknev", "email", "cel", "termek"}


def test_attachments_within_the_yaml_limits_are_kept_and_others_named(client, settings):
    token, _ = opened(client)
    png = (FIXTURES / "attachment.png").read_bytes()
    ok = post(client, {**website(token), "fajl": [(io.BytesIO(png), "kep.png", "image/png")]})
    assert ok.status_code == 303
    [event] = inbox()
    assert [(a["filename"], a["content_type"], a["size"]) for a in event.payload["attachments"]] == [
        ("kep.png", "image/png", len(png))]

    token, _ = opened(client)
    wrong = post(client, {**website(token), "fajl": [(io.BytesIO(b"MZ\x90\x00"), "setup.exe",
                                                      "application/x-msdownload")]})
    assert wrong.status_code == 400 and errors(wrong) == {"fajl": "setup.exe: ilyen típusú fájl nem csatolható"}
    config = settings.config.model_copy(update={"attachments_max_bytes": 10})
    settings_module.use(settings.model_copy(update={"config": config}))
    big = post(client, {**website(token), "fajl": [(io.BytesIO(png), "kep.png", "image/png")]})
    assert big.status_code == 400 and errors(big)["fajl"].startswith("kep.png: a fájl nagyobb")
    many = post(client, {**website(token), "fajl": [(io.BytesIO(b"x"), f"{i}.txt", "text/plain") for i in range(6)]})
    assert errors(many) == {"fajl": "legfeljebb 5 fájl csatolható"}
    assert len(inbox()) == 1


def test_without_a_valid_token_or_from_another_site_nothing_is_stored(client):
    token, _ = opened(client)
    _, other_form_page = opened(client, "product")
    other_token = re.search(r'name="token" value="([^"]+)"', other_form_page).group(1)
    for data, headers in ((website(""), {}), (website(token[:-3] + "AAA"), {}), (website(other_token), {}),
                          (website(token), {"Origin": "https://evil.example"}), (website(token), {"Origin": "null"})):
        answer = post(client, data, **headers)
        assert answer.status_code == 403 and "Az űrlap lejárt" in answer.get_data(as_text=True)
    assert inbox() == []
    assert post(client, website(token), Origin="").status_code == 303  # no Origin at all: the token decides


def test_the_honeypot_thanks_a_bot_and_stores_nothing(client):
    token, _ = opened(client)
    answer = post(client, website(token, homepage="http://spam.example"))
    assert answer.status_code == 200 and "Köszönjük" in answer.get_data(as_text=True)
    assert inbox() == []


def test_one_address_may_send_only_so_many_forms(client, settings):
    config = settings.config.model_copy(update={"hosted_forms": HostedFormSpec(rate_limit=2, rate_window_minutes=10)})
    settings_module.use(settings.model_copy(update={"config": config}))
    for _ in range(2):
        token, _ = opened(client)
        sent = post(client, website(token), **{"X-Forwarded-For": "203.0.113.7"})
        assert sent.status_code == 303
    again = post(client, website(token), **{"X-Forwarded-For": "203.0.113.7"})
    assert again.status_code == 303 and thanked(again) == thanked(sent)  # a resubmit passes
    token, _ = opened(client)
    limited = post(client, website(token), **{"X-Forwarded-For": "203.0.113.7"})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "600"
    assert "Túl sok beküldés" in limited.get_data(as_text=True)
    assert post(client, website(token), **{"X-Forwarded-For": "198.51.100.9"}).status_code == 303  # another address
    assert len(inbox()) == 3
    from core.models import FormRate
    with store.session() as s:  # the address is kept only as a salted hash
        assert all("203.0.113.7" not in r.address_hash and len(r.address_hash) == 64
                   for r in s.scalars(select(FormRate)))


def test_a_double_submit_is_one_event_on_each_database(any_database):
    client = create_app(any_database).test_client()
    token, _ = opened(client)
    first, second = post(client, website(token)), post(client, website(token))
    assert first.status_code == second.status_code == 303 and thanked(first) == thanked(second)
    assert len(inbox()) == 1


def test_a_body_over_the_limit_is_named_at_the_attachment_field(settings):
    config = settings.config.model_copy(update={"attachments_max_bytes": 1024})
    client = create_app(settings_module.use(settings.model_copy(update={"config": config}))).test_client()
    token, _ = opened(client)
    huge = io.BytesIO(b"x" * (1024 * 1024 + 4096))  # more than the app's whole-body limit (files + 1 MB)
    answer = post(client, {**website(token), "fajl": [(huge, "nagy.pdf", "application/pdf")]})
    assert answer.status_code == 413 and errors(answer) == {"fajl": "a csatolmányok együtt túl nagyok"}
    assert inbox() == []
