"""The sandbox console (`GET /`) as a person reads it: each fake's objects as tables, Unicode as text, the caught
mail's links clickable, a failed action's notice marked as an error, the raw JSON one click away. The page is
read with the standard library's HTML parser, so the assertions are on tables, cells and links, not on markup."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import pytest

from sandbox import console as console_view
from tests.integration.test_sandbox_website import Receiver

NAME = ("Árvíztűrő", "Tükörfúrógép")  # every Hungarian accent, and what an ASCII-only escape would mangle
SURVEY = "http://127.0.0.1:8000/survey/eyJ0IjoxfQ.abc-DEF_1"


class Page(HTMLParser):
    """The console's tables (keyed by the id of their section) as rows of cell texts, its links and its notice."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[tuple[str, str]] = []
        self.notices: list[dict[str, str]] = []
        self._section, self._row, self._cell, self._link, self._notice = "", None, None, None, None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "section":
            self._section = found.get("id", "")
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "a":
            self._link = [found.get("href", ""), ""]
        elif "notice" in found.get("class", "").split():
            self._notice = {"class": found["class"], "role": found.get("role", ""), "text": ""}

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables.setdefault(self._section, []).append(self._row)
            self._row = None
        elif tag == "a" and self._link is not None:
            self.links.append((self._link[0], self._link[1]))
            self._link = None
        elif tag == "p" and self._notice is not None:
            self.notices.append(self._notice)
            self._notice = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._link is not None:
            self._link[1] += data
        if self._notice is not None:
            self._notice["text"] += data

    def rows(self, section: str) -> list[list[str]]:
        """The body rows of a section's table (its header row left out)."""
        return self.tables.get(section, [])[1:]

    def row_with(self, section: str, text: str) -> list[str]:
        found = [row for row in self.rows(section) if any(text in cell for cell in row)]
        assert found, f"no row with {text!r} in #{section}: {self.tables.get(section)}"
        return found[0]


def console(sandbox: Any, path: str = "/") -> tuple[str, Page]:
    answer = sandbox.http.get(path).raise_for_status()
    return answer.text, Page(answer.text)


def send_mail(sandbox: Any, subject: str, text: str, to: str = "arvizturo@example.com") -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Support <support@example.com>", to, subject
    msg["Date"] = "Fri, 04 Dec 2026 19:05:09 +0100"  # the console shows the sender's Date, in UTC
    msg.set_content(text)
    with smtplib.SMTP("127.0.0.1", sandbox.smtp_port, timeout=10) as smtp:
        smtp.send_message(msg)


def happyfox_auth(sandbox: Any) -> tuple[str, str]:
    return sandbox.credentials["happyfox_api_key"], sandbox.credentials["happyfox_auth_code"]


def seed_every_fake(sandbox: Any) -> dict[str, Any]:
    """One object of each kind, made through each fake's own API as a connector makes it."""
    hubspot = {"Authorization": f"Bearer {sandbox.credentials['hubspot_access_token']}"}
    contact = sandbox.http.post("/crm/v3/objects/contacts", headers=hubspot, json={"properties": {
        "lastname": NAME[0], "firstname": NAME[1], "email": "arvizturo@example.com"}}).raise_for_status().json()
    ticket = sandbox.http.post("/crm/v3/objects/tickets", headers=hubspot, json={
        "properties": {"subject": "Ékezetes tárgy", "hs_pipeline": "0", "hs_pipeline_stage": "1"},
        "associations": [{"to": {"id": contact["id"]},
                          "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}]}]},
    ).raise_for_status().json()
    happyfox = sandbox.http.post("/api/1.1/json/tickets/", auth=happyfox_auth(sandbox), json={
        "subject": "Nem tudok belépni", "text": "Üres oldal", "category": 3, "name": " ".join(NAME),
        "email": "arvizturo@example.com"}).raise_for_status().json()
    sandbox.http.post("/v1/contacts", auth=(sandbox.credentials["aircall_api_id"],
                                            sandbox.credentials["aircall_api_token"]),
                      json={"first_name": "Őzike", "last_name": "Ügyfél",
                            "phone_numbers": [{"label": "mobile", "value": "+36 30 111 2222"}]}).raise_for_status()
    sandbox.http.post("/_sandbox/console/aircall/call", data={"raw_digits": "+36 30 111 2222"})
    sandbox.http.post("/_sandbox/gmail/messages", json={
        "from": "Ügyfél <ugyfel@example.com>", "to": "support@example.com", "subject": "Kérdés a számláról",
        "body": "Jó napot!"}).raise_for_status()
    send_mail(sandbox, "Mennyire volt elégedett? (#BR00001002)", f"Tisztelt {' '.join(NAME)}!\n\n{SURVEY}\n")
    return {"contact": contact, "ticket": ticket, "happyfox": happyfox}


def test_console_shows_each_fake_as_a_table_with_unicode_as_text(sandbox):
    made = seed_every_fake(sandbox)
    html, page = console(sandbox)
    full_name = f"{NAME[0]} {NAME[1]}"
    assert full_name in html and "\\u0" not in html  # as text, not JSON-escaped, not as HTML entities

    contact = page.row_with("hubspot-contacts", full_name)
    assert contact[0] == made["contact"]["id"] and "arvizturo@example.com" in contact
    ticket = page.row_with("hubspot-tickets", "Ékezetes tárgy")
    assert "New" in ticket and "arvizturo@example.com" in ticket  # the pipeline stage's label; the associated contact
    happyfox = page.row_with("happyfox-tickets", made["happyfox"]["display_id"])
    assert "Nem tudok belépni" in happyfox and "New Close" in happyfox  # status, and the Close button beside it
    assert full_name in page.row_with("happyfox-users", "arvizturo@example.com")
    assert "Őzike Ügyfél" in page.row_with("aircall-contacts", "+36 30 111 2222")
    call = page.row_with("aircall-calls", "+36 30 111 2222")
    assert "inbound" in call and "Őzike Ügyfél" in call and "Anna Agent" in call
    assert "Ügyfél <ugyfel@example.com>" in page.row_with("gmail-messages", "Kérdés a számláról")
    mail = page.row_with("mail", "Mennyire volt elégedett? (#BR00001002)")
    assert "Support <support@example.com> → arvizturo@example.com" in mail
    assert mail[0] == "18:05:09"

    summary = dict((text.split(" ", 1)[1], int(text.split(" ", 1)[0])) for href, text in page.links
                   if href.startswith("#"))
    assert summary["HubSpot contacts"] == 1 and summary["HappyFox tickets"] == 1 and summary["Mail sent"] == 1
    assert summary["Aircall calls"] == 1 and summary["Gmail messages"] == 1


def test_console_mail_links_are_clickable_and_everything_else_is_escaped(sandbox):
    send_mail(sandbox, "<b>Tárgy</b>", f"Értékelje: {SURVEY}\n<script>alert(1)</script> javascript:alert(2)\n"
                                      "<a href=\"https://evil.example/\">x</a>")
    html, page = console(sandbox)
    assert (SURVEY, SURVEY) in page.links  # the survey link is an <a href> to itself
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Tárgy&lt;/b&gt;" in html
    assert not [href for href, _ in page.links if href.startswith("javascript:")]
    assert '<a href="https://evil.example/">' not in html  # HTML in a mail body is shown, not rendered


@pytest.mark.parametrize("status, said", [(500, "500 Internal Server Error: injected fault"),
                                         (400, "400 Bad Request: __all__: injected fault")])  # HappyFox's 400 shape
def test_console_close_that_fails_is_a_red_error_with_status_and_message(sandbox, status, said):
    ticket = sandbox.http.post("/api/1.1/json/tickets/", auth=happyfox_auth(sandbox), json={
        "subject": "Teszt", "text": "Szöveg", "category": 3, "name": "Elek", "email": "elek@example.com"},
    ).raise_for_status().json()
    sandbox.fault(service="happyfox", method="POST", path=f"/api/1.1/json/ticket/{ticket['id']}/staff_update/",
                  status=status)
    answer = sandbox.http.post(f"/_sandbox/console/happyfox/{ticket['id']}/close")
    assert answer.status_code == 303
    _, page = console(sandbox, answer.headers["Location"])
    [notice] = page.notices
    assert notice["role"] == "alert" and "error" in notice["class"].split() and "ok" not in notice["class"].split()
    assert said in notice["text"]
    assert "New Close" in page.row_with("happyfox-tickets", ticket["display_id"])  # still open

    answer = sandbox.http.post(f"/_sandbox/console/happyfox/{ticket['id']}/close")  # the fault is used up
    _, page = console(sandbox, answer.headers["Location"])
    [notice] = page.notices
    assert notice["role"] == "status" and "ok" in notice["class"].split() and "error" not in notice["class"]
    assert f"Closed HappyFox ticket {ticket['display_id']}" in notice["text"]
    assert "Closed" in page.row_with("happyfox-tickets", ticket["display_id"])


@pytest.mark.parametrize("where, expected", [
    ("other-secret", "Form refused: the service answered 401 Unauthorized."),
    ("nobody", "could not be reached (error: ConnectError)"),
    ("no-url", "Not sent: the sandbox was started without --webhook-url"),
])
def test_console_form_that_fails_is_a_red_error(sandbox, where, expected):
    other = Receiver("whsec_" + "b3RoZXItc2VjcmV0LW9mLXRoZS1zZXJ2aWNlLTAx")  # answers 401 to a form it cannot verify
    try:
        sandbox.running.sandbox.webhook_url = {"other-secret": other.url, "nobody": "http://127.0.0.1:1",
                                               "no-url": None}[where]
        answer = sandbox.http.post("/_sandbox/console/form", data={"email": "elek@example.com"})
        _, page = console(sandbox, answer.headers["Location"])
    finally:
        other.server.shutdown()
        other.server.server_close()
    [notice] = page.notices
    assert notice["role"] == "alert" and "error" in notice["class"].split() and expected in notice["text"]


def test_console_keeps_the_raw_json_one_click_away(sandbox):
    seed_every_fake(sandbox)
    html, page = console(sandbox)
    hrefs = {href for href, _ in page.links}
    assert {"/_sandbox/state", "/_sandbox/mail", "/_sandbox/calls"} <= hrefs
    for name in sandbox.running.sandbox.vendors:  # one folded <details> per fake with its objects as JSON
        assert f"<details><summary>{name}: " in html
    assert '"firstname": "Tükörfúrógép"' in html.replace("&#34;", '"')  # Unicode as text in the JSON too


@pytest.mark.parametrize("value, shown", [
    ("2026-12-04T18:21:58.577Z", "2026-12-04 18:21:58"),         # HubSpot
    ("2026-12-04 18:21:58", "2026-12-04 18:21:58"),              # HappyFox (UTC)
    (1796408454, "2026-12-04 18:20:54"),                         # Aircall, epoch seconds
    ("1796408454000", "2026-12-04 18:20:54"),                    # Gmail internalDate, epoch ms
    (1796408454.25, "2026-12-04 18:20:54"),                      # the call log
    ("Fri, 04 Dec 2026 19:21:58 +0100", "2026-12-04 18:21:58"),  # a mail's Date header
    ("soon", "soon"), (None, ""),
])
def test_console_shows_every_fakes_times_alike_in_utc(value, shown):
    assert console_view.when(value) == shown
