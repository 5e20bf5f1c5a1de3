"""Reconcile covers everything it mirrors (issue 18): identities changed in HubSpot or HappyFox, and the complaint
register's fields, each a pass with its own cursor that costs what changed since; the lost event's change is
repaired once, and a vendor failing stops the pass to resume from its cursor."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from connectors.errors import Unavailable
from core import store
from core.models import Cursor
from flows.closure import reconcile

from .flowkit import fast_vendors, identities, put_form, run, tickets, writes
from .test_complaints import Staff, complaint


def fixed(report: reconcile.ReconcileResult, kind: str) -> list[reconcile.Fix]:
    return [f for f in report.fixes if f.kind == kind]


def cursor(name: str) -> str | None:
    with store.session() as s:
        row = s.get(Cursor, name)
        return row.value if row is not None else None


def test_an_email_changed_in_hubspot_is_learnt_once(flow):
    assert run(put_form()) == "done"
    [ticket] = tickets()
    contact_id = identities(ticket.customer_id)["hubspot"][0]
    fast_vendors().hubspot.update_contact(contact_id, {"email": "kata.uj@example.com", "phone": "+36 30 555 1234"})
    report = reconcile.reconcile()
    [fix] = fixed(report, "identity")
    assert "email" in fix.detail and "phone" in fix.detail and "kata" not in fix.detail
    mine = identities(ticket.customer_id)
    assert sorted(mine["email"]) == ["kata.kovacs@example.com", "kata.uj@example.com"]  # the old one stays
    assert mine["phone"] == ["+36305551234"]
    assert fixed(reconcile.reconcile(), "identity") == []
    assert cursor(reconcile.CONTACTS_CURSOR) and cursor(reconcile.USERS_CURSOR)


def test_a_phone_added_in_happyfox_is_learnt_from_the_changed_ticket(flow, settings):
    assert run(put_form()) == "done"
    [ticket] = tickets()
    hf = flow.state("happyfox")
    user_id = hf["tickets"][str(ticket.happyfox_id)]["user"] if str(ticket.happyfox_id) in hf["tickets"] \
        else hf["tickets"][ticket.happyfox_id]["user"]
    running = flow.running.sandbox
    with running.lock:
        users = running.state["happyfox"]["users"]
        user = users.get(user_id) or users[str(user_id)]
        user["phones"] = [{"id": 1, "type": "m", "number": "+36 70 123 9999", "is_primary": True}]
    Staff(settings, flow).write(ticket.happyfox_id)  # the ticket changes, so the pass reads it
    report = reconcile.reconcile()
    assert [f.detail.split(": ")[1] for f in fixed(report, "identity")] == ["phone from happyfox"]
    assert identities(ticket.customer_id)["phone"] == ["+36701239999"]


def test_the_contact_pass_reads_only_what_changed_since_its_cursor(flow):
    assert run(put_form()) == "done"
    reconcile.reconcile()
    flow.clear_calls()
    reconcile.reconcile()
    searches = [w for w in writes(flow) if w[2] == "/crm/v3/objects/contacts/search"]
    assert len(searches) == 1  # one page of nothing new: no contact re-read


def test_a_complaint_field_whose_event_was_lost_reaches_the_register(flow, settings):
    assert run(put_form(purpose="panasz", summary="Hibás számla", details="Kétszer terheltek.")) == "done"
    [ticket] = tickets()
    staff = Staff(settings, flow)
    staff.write(ticket.happyfox_id, event_type="Külső csalás", loss_amount_huf="99 999")  # its webhook is lost
    report = reconcile.reconcile()
    assert [f.ticket_id for f in fixed(report, "complaint")] == [ticket.id]
    c = complaint()
    assert (c.event_type, c.loss_amount_huf) == ("external_fraud", 99999)
    [mirror] = [t for t in flow.state("hubspot")["tickets"].values() if t["id"] == ticket.hubspot_ticket_id]
    assert mirror["properties"]["complaint_event_type"] == "external_fraud"
    assert fixed(reconcile.reconcile(), "complaint") == []
    assert cursor(reconcile.COMPLAINTS_CURSOR)


def test_a_happyfox_outage_stops_the_passes_and_the_next_run_repairs(flow, settings):
    assert run(put_form(purpose="panasz", summary="Hibás számla", details="Kétszer terheltek.")) == "done"
    [ticket] = tickets()
    reconcile.reconcile(since=datetime.now(timezone.utc) - timedelta(hours=1))
    Staff(settings, flow).write(ticket.happyfox_id, loss_amount_huf="5 000")
    flow.fault(service="happyfox", method="GET", path="/api/1.1/json/tickets/", status=503, times=50)
    with pytest.raises(Unavailable):
        reconcile.reconcile()
    assert complaint().loss_amount_huf is None  # nothing half-done
    flow.http.delete("/_sandbox/faults").raise_for_status()
    report = reconcile.reconcile()
    assert [f.ticket_id for f in fixed(report, "complaint")] == [ticket.id]
    assert complaint().loss_amount_huf == 5000
