"""The forms' reference data over the sandbox (policy 000, 001): service areas from a YAML list (an unknown one is
a 400 naming the field), the "Információkérés" category, manual reports with their received-at time (deadlines
count from it, over a holiday) and attachments, and the customer's language from the form or earlier tickets."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from core import settings as settings_module
from switchboard.cli import main
from core.settings import SANDBOX_DEFAULTS
from webhooks.app import create_app

from .flowkit import fast_vendors, put, put_form, run, signed, tickets
from .test_complaints import _env

# Wednesday 21 October 2026, 15:00 in Budapest; Friday the 23rd is a holiday: two working days end on Monday the
# 26th at 16:30 Budapest (15:30 UTC).
RECEIVED = datetime(2026, 10, 21, 13, 0, tzinfo=timezone.utc)
DUE = datetime(2026, 10, 26, 15, 30, tzinfo=timezone.utc)
PDF = b"%PDF-1.4 scanned letter"


@pytest.fixture
def app(settings):
    return create_app(settings).test_client()


def admin(settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.env.secret('admin_token')}"}


def post_form(app, settings, **fields: str):
    posted = {"vezeteknev": "Kovács", "keresztnev": "Kata", "email": "kata@example.com", "cel": "hibabejelentes",
              "termek": "Crossec Norma", "rovid_leiras": "Hiba", **fields}
    raw, headers = signed(settings.env.secret("form_webhook_secret"), {"form": "website", "fields": posted})
    return app.post("/webhooks/form", data=raw, headers=headers)


def test_service_areas_come_from_the_yaml_and_an_unknown_one_is_refused_by_field(flow, settings, app):
    assert settings.config.forms["website"].service_areas == ["Crossec Norma", "GDPR Segédanyagok",
                                                              "Üzleti tanácsadás", "Egyéb"]
    refused = post_form(app, settings, termek="Holdjáró")
    assert refused.status_code == 400
    assert list(refused.get_json()["fields"]) == ["termek"] and "Crossec Norma" in refused.get_json()["fields"]["termek"]
    assert post_form(app, settings, termek="GDPR Segédanyagok").status_code == 202
    assert post_form(app, settings, nyelv="de").get_json()["fields"] == {"nyelv": "must be one of hu, en"}


def test_the_information_request_category_reaches_happyfox(flow, settings):
    assert settings.config.categories["informaciokeres"].label["hu"] == "Információkérés"
    assert run(put_form(purpose="informaciokeres")) == "done"
    [ticket] = tickets()
    assert ticket.category == "informaciokeres"
    assert flow.state("happyfox")["tickets"][str(ticket.happyfox_id)]["category"] == 9


def test_a_manual_report_counts_its_deadlines_from_its_received_at_and_keeps_its_attachment(flow, settings, app):
    answer = app.post("/admin/tickets", headers=admin(settings), json={
        "channel": "post", "email": "level@example.com", "subject": "Levélben érkezett panasz",
        "received_at": "2026-10-21T15:00:00+02:00",
        "attachments": [{"filename": "level.pdf", "content_type": "application/pdf",
                         "data_b64": base64.b64encode(PDF).decode()}]})
    assert answer.status_code == 202, answer.get_json()
    assert run(int(answer.get_json()["id"])) == "done"
    [ticket] = tickets()
    assert ticket.opened_at == RECEIVED
    assert ticket.confirm_due_at == DUE and ticket.first_response_due_at == DUE
    hf = flow.state("happyfox")["tickets"][str(ticket.happyfox_id)]
    assert [a["filename"] for u in hf["updates"] if u["message"] for a in u["message"]["attachments"]] == ["level.pdf"]

    bad = app.post("/admin/tickets", headers=admin(settings), json={
        "channel": "post", "email": "level@example.com", "subject": "x",
        "attachments": [{"filename": "x.exe", "content_type": "application/x-msdownload", "data_b64": "AAAA"}]})
    assert bad.status_code == 400 and list(bad.get_json()["fields"]) == ["attachments.0.content_type"]
    future = app.post("/admin/tickets", headers=admin(settings), json={
        "channel": "post", "email": "level@example.com", "subject": "x", "received_at": "2099-01-01T00:00:00Z"})
    assert future.status_code == 400 and "received_at" in future.get_json()["fields"]
    naive = app.post("/admin/tickets", headers=admin(settings), json={
        "channel": "post", "email": "level@example.com", "subject": "x", "received_at": "2026-10-21T15:00:00"})
    assert naive.status_code == 400 and "received_at" in naive.get_json()["fields"]


def cli_env(settings, tmp_path) -> dict[str, str]:
    return {**_env(settings), **{name.upper(): value for name, value in SANDBOX_DEFAULTS.items()},
            "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "none.json"),
            "SMTP_HOST": settings.env.smtp_host, "SMTP_PORT": str(settings.env.smtp_port)}


def test_the_cli_takes_a_budapest_received_at_and_files(flow, settings, tmp_path):
    letter = tmp_path / "level.pdf"
    letter.write_bytes(PDF)
    result = CliRunner().invoke(main, ["ticket", "create", "--channel", "post", "--email", "cli@example.com",
                                       "--subject", "Levél", "--received-at", "2026-10-21 15:00",
                                       "--attach", str(letter)], env=cli_env(settings, tmp_path))
    settings_module.use(settings)
    fast_vendors()
    assert result.exit_code == 0, result.output
    [ticket] = tickets()
    assert ticket.opened_at == RECEIVED and ticket.first_response_due_at == DUE, result.output
    hf = flow.state("happyfox")["tickets"][str(ticket.happyfox_id)]
    assert "level.pdf" in json.dumps(hf["updates"])
    wrong = CliRunner().invoke(main, ["ticket", "create", "--channel", "post", "--email", "cli@example.com",
                                      "--subject", "Levél", "--received-at", "tegnap"], env=cli_env(settings, tmp_path))
    settings_module.use(settings)
    assert wrong.exit_code == 2 and "received_at" in wrong.output


def test_the_language_follows_the_form_field_or_the_customers_earlier_tickets(flow, settings):
    english = put("form", "form", {"form": "website", "attachments": [], "fields": {
        "last_name": "Smith", "first_name": "Anna", "email": "anna@example.com", "purpose": "hibabejelentes",
        "product": "Crossec Norma", "summary": "Login fails", "language": "en"}})
    assert run(english) == "done"
    assert flow.mail()[-1]["headers"]["Content-Language"] == "en"
    assert run(put_form("anna@example.com", summary="Again")) == "done"        # no language field: as before
    assert flow.mail()[-1]["headers"]["Content-Language"] == "en"
    assert run(put_form("uj@example.com")) == "done"                           # new, no field: the form's own
    assert flow.mail()[-1]["headers"]["Content-Language"] == "hu"
    manual = put("manual", "manual", {"channel": "post", "email": "anna@example.com", "subject": "Letter"})
    assert run(manual) == "done"
    assert flow.mail()[-1]["headers"]["Content-Language"] == "en"
