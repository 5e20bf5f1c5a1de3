"""A complaint's evidence under legal hold over the sandbox (policy 004 §13, 002): a consent withdrawal during an
open complaint erases what rests on consent and keeps the complaint's tickets, messages and recordings, saying so
in the receipts; the complaint still closes from HappyFox (identification data removed); five years on, the hold
ends and the kept objects are erased, leaving no trace anywhere."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import store
from core.models import Complaint, Tombstone
from flows.complaints import complaint_hold
from flows.privacy import erasure, hold_release, retention, tombstones

from .flowkit import audit_actions, objects, put_form, run, tickets
from .privacykit import EMAIL, WRITTEN_PHONE, database_traces, present_everywhere, quick, unexplained_traces
from .test_complaints import Staff


@pytest.fixture
def flow(settings, sandbox):
    quick()
    return sandbox


def the_complaint() -> Complaint:
    with store.session() as s:
        [found] = s.scalars(select(Complaint)).all()
        s.expunge_all()
    return found


def receipts(erasure_id: int) -> dict[str, dict]:
    return {step["processor"]: step["receipt"] for step in erasure.status(erasure_id)["steps"]}


def test_consent_withdrawal_keeps_an_open_complaints_evidence_until_its_hold_ends(flow, settings):
    made = present_everywhere(flow)                    # a bug report, a mailbox ticket, two recorded calls, mail
    assert run(put_form(EMAIL, phone=WRITTEN_PHONE, purpose="panasz", summary="Hibás számla")) == "done"
    complaint_ticket = tickets()[-1]
    c = the_complaint()
    assert c.ticket_id == complaint_ticket.id and c.status == "open"

    customer_id = retention.withdraw_consent(email=EMAIL)
    [erasure_id] = retention.sweep(refresh=False)
    assert erasure.run(erasure_id) == "done"

    # What rests on consent is gone: the other tickets, at HappyFox and HubSpot.
    happyfox_tickets = flow.state("happyfox")["tickets"]
    assert list(happyfox_tickets) == [str(complaint_ticket.happyfox_id)]
    assert [t["id"] for t in objects(flow, "hubspot", "tickets")] == [complaint_ticket.hubspot_ticket_id]
    # The complaint's evidence is kept: its tickets, their contacts, the calls' recordings and the mail of the days.
    calls = flow.state("aircall")["calls"]
    assert all(calls[str(i)]["recording"] and not calls[str(i)].get("archived") for i in made["calls"])
    assert set(made["messages"]) <= set(flow.state("gmail")["messages"])
    steps = receipts(erasure_id)
    note = "kept: complaint register, until 5 years after the complaint closes (complaint open)"
    assert {name: r["kept"]["note"] for name, r in steps.items()} == dict.fromkeys(steps, note)
    assert steps["happyfox"]["kept"]["happyfox_ticket"] == [str(complaint_ticket.happyfox_id)]
    assert steps["happyfox"]["tickets_deleted"] and str(made["happyfox_ticket"]) in steps["happyfox"]["tickets_deleted"]
    assert sorted(steps["aircall"]["kept"]["aircall_call"]) == sorted(str(i) for i in made["calls"])
    assert sorted(steps["gmail"]["kept"]["gmail_message"]) == sorted(made["messages"])
    assert steps["gmail"]["messages_deleted"] == []
    # The register row of the open complaint keeps its complainant (the answer needs them); nothing else does.
    assert {t.split(".")[0] for t in database_traces()} == {"complaints"}
    assert the_complaint().customer_email == EMAIL
    with store.session() as s:  # the held ticket is not tombstoned: its later events still reach the register
        hashes = set(s.scalars(select(Tombstone.hash)))
    assert not tombstones.tombstone_keys(happyfox_ticket=complaint_ticket.happyfox_id).keys() & hashes

    # Staff answer and close the complaint in HappyFox: the register closes, the identification data goes.
    staff = Staff(settings, flow)
    staff.deliver(staff.write(complaint_ticket.happyfox_id, outcome="unfounded", investigation_ended_at="2026-10-21"))
    staff.deliver(staff.write(complaint_ticket.happyfox_id, text=None, status=7))
    c = the_complaint()
    assert c.status == "closed" and c.customer_email is None and c.keep_until is not None
    assert "complaints.customer_email" not in database_traces()

    # The hold lasts until keep_until; the day after, the kept objects are erased and tombstoned.
    assert hold_release.release_ended(c.keep_until) == []
    assert str(complaint_ticket.happyfox_id) in flow.state("happyfox")["tickets"]
    released = hold_release.release_ended(c.keep_until + timedelta(days=1))
    assert sorted(p for _, p in released) == ["aircall", "gmail", "happyfox", "hubspot", "switchboard"]
    assert hold_release.release_ended(c.keep_until + timedelta(days=2)) == []  # once
    assert flow.state("happyfox")["tickets"] == {} and objects(flow, "hubspot", "tickets") == []
    assert unexplained_traces(flow) == [] and database_traces() == []
    assert all(calls_now["archived"] for calls_now in flow.state("aircall")["calls"].values())
    assert receipts(erasure_id)["happyfox"]["kept"]["released_at"]
    assert tombstones.is_tombstoned(happyfox_ticket=complaint_ticket.happyfox_id)
    assert audit_actions().count("erasure.hold_released") == 5
    assert customer_id is not None


def test_a_closed_complaint_holds_for_five_years_and_an_expired_one_holds_nothing(flow, settings):
    assert run(put_form(EMAIL, purpose="panasz")) == "done"
    ticket = tickets()[0]
    staff = Staff(settings, flow)
    staff.deliver(staff.write(ticket.happyfox_id, text=None, status=7))
    c = the_complaint()
    assert c.status == "closed"
    with store.session() as s:
        hold = complaint_hold.hold_of(s, [c.customer_id])
        assert hold.note() == f"kept: complaint register, until {c.keep_until.isoformat()}"
        assert not complaint_hold.hold_of(s, [c.customer_id], today=c.keep_until + timedelta(days=1))

    erasure_id = erasure.request(email=EMAIL)
    assert erasure.run(erasure_id) == "done"
    assert receipts(erasure_id)["happyfox"]["kept"]["until"] == c.keep_until.isoformat()
    assert str(ticket.happyfox_id) in flow.state("happyfox")["tickets"]
    assert database_traces() == []  # a closed complaint's register row holds no identification data


def test_a_failed_release_is_tried_again(flow, settings):
    assert run(put_form(EMAIL, purpose="panasz")) == "done"
    ticket = tickets()[0]
    staff = Staff(settings, flow)
    staff.deliver(staff.write(ticket.happyfox_id, text=None, status=7))
    erasure_id = erasure.request(email=EMAIL)
    assert erasure.run(erasure_id) == "done"
    later = the_complaint().keep_until + timedelta(days=1)
    flow.fault(service="happyfox", method="POST", path=f"/api/1.1/json/ticket/{ticket.happyfox_id}/delete/", status=500,
               times=10)
    with pytest.raises(Exception):
        hold_release.release_ended(later)
    assert not receipts(erasure_id)["happyfox"]["kept"].get("released_at")
    flow.http.delete("/_sandbox/faults").raise_for_status()
    assert ("happyfox" in [p for _, p in hold_release.release_ended(later)])
    assert flow.state("happyfox")["tickets"] == {}
