"""The manual channel (post, fax, social media, in person): the admin API stores a report that runs the same
intake as the form, with the same identity links; the CLI path is in test_inbox_cli.py."""
from __future__ import annotations

from webhooks.app import create_app

from .flowkit import customers, fast_vendors, identities, objects, put, put_form, run, tickets


def test_manual_reports_from_the_admin_api_run_the_same_intake(settings, sandbox):
    fast_vendors()
    client = create_app(settings).test_client()
    answer = client.post("/admin/tickets", headers={"Authorization": f"Bearer {settings.env.secret('admin_token')}"},
                         json={"channel": "in_person", "phone": "06 30 123 4567", "first_name": "Péter",
                               "last_name": "Személyes", "subject": "Személyes ügyfélfogadás", "key": "desk-1"})
    assert answer.status_code == 202, answer.get_json()
    inbox_id = int(answer.get_json()["id"])
    assert run(inbox_id) == "done"
    [ticket] = tickets()
    assert ticket.channel == "in_person" and ticket.happyfox_id is not None and ticket.hubspot_ticket_id
    [contact] = objects(sandbox, "hubspot", "contacts")
    assert contact["properties"]["phone"] == "+36301234567" and "email" not in contact["properties"]
    assert sandbox.mail() == []  # no address to confirm to: audited, not guessed
    assert ticket.confirmed_at is None
    repeat = client.post("/admin/tickets", headers={"Authorization": f"Bearer {settings.env.secret('admin_token')}"},
                         json={"channel": "in_person", "phone": "06 30 123 4567", "subject": "x", "key": "desk-1"})
    assert repeat.status_code == 200
    assert put("manual", "manual", {}, key="desk-1") == inbox_id


def test_a_manual_report_from_a_known_customer_is_confirmed_to_their_email(settings, sandbox):
    fast_vendors()
    run(put_form("ismert@example.com"))
    [customer] = customers()
    inbox_id = put("manual", "manual", {"channel": "social", "email": "ISMERT@example.com", "phone": "+36 30 111 2222",
                                        "subject": "Facebook üzenet", "details": "", "category": "panasz",
                                        "language": "hu", "first_name": None, "last_name": None})
    assert run(inbox_id) == "done"
    assert [c.id for c in customers()] == [customer.id]
    assert identities(customer.id)["phone"] == ["+36301112222"]
    social = [t for t in tickets() if t.channel == "social"]
    assert len(social) == 1 and social[0].category == "panasz"
    to_customer = [m for m in sandbox.mail() if m["to"] == ["ismert@example.com"]]  # the officer hears too
    assert len(to_customer) == 2 and social[0].told_id in to_customer[1]["subject"]
    assert len(objects(sandbox, "hubspot", "contacts")) == 1
