"""Erasure over the sandbox: a customer present in every system is erased, and afterwards neither any fake nor any
database table holds their email or phone; the receipt says what went where; stale data cannot bring them back."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from core import store
from core.models import Audit, Customer, InboxEvent, Tombstone
from flows.privacy import erasure, tombstones

from .delivery import deliver
from .flowkit import customers, objects, put_form, run, tickets
from .privacykit import (
    EMAIL,
    OTHER_EMAIL,
    PHONE,
    database_traces,
    present_everywhere,
    quick,
    sandbox_traces,
    unexplained_traces,
)


@pytest.fixture
def flow(settings, sandbox):
    quick()
    return sandbox


def test_a_customer_present_everywhere_leaves_no_trace(flow):
    made = present_everywhere(flow)
    assert run(put_form(OTHER_EMAIL)) == "done"  # somebody else, who must be untouched
    assert database_traces() and sandbox_traces(flow)  # the scan sees the person before the erasure

    erasure_id = erasure.request(email=EMAIL, reason="request")
    flow.clear_calls()
    assert erasure.run(erasure_id) == "done"

    assert unexplained_traces(flow) == []
    # Only the archived calls' numbers are left at Aircall; the person's calls were found by number, not by
    # listing the company's whole history.
    calls = flow.state("aircall")["calls"]
    assert [p for p in sandbox_traces(flow) if p.startswith("aircall.")] == [
        f"aircall.calls.{c}.raw_digits" for c in made["calls"]]
    assert all(calls[str(c)]["archived"] and calls[str(c)]["contact"] is None for c in made["calls"])
    aircall_paths = {(c["method"], c["path"]) for c in flow.calls("aircall")}
    assert ("GET", "/v1/calls/search") in aircall_paths and ("GET", "/v1/calls") not in aircall_paths
    assert database_traces() == []
    state = erasure.status(erasure_id)
    steps = {step["processor"]: step for step in state["steps"]}
    assert state["status"] == "done" and state["completed_at"]
    assert all(step["status"] == "done" and step["receipt"]["at"] for step in steps.values())
    hubspot, happyfox = steps["hubspot"]["receipt"], steps["happyfox"]["receipt"]
    assert hubspot["counts"] == {"contacts": 1, "tickets": 2, "calls": 2}
    assert set(hubspot["contacts_gdpr_deleted"].values()) == {"deleted"}
    assert happyfox["counts"]["tickets"] == 2 and str(made["happyfox_ticket"]) in happyfox["tickets_deleted"]
    aircall = steps["aircall"]["receipt"]
    assert aircall["counts"] == {"calls": 2, "recordings": 2, "voicemails": 0, "contacts": 1}
    assert aircall["retained_by_vendor"]["call_log"] == sorted(str(c) for c in made["calls"])
    assert aircall["calls_archived"] == {str(c): "archived" for c in made["calls"]}
    assert aircall["contacts_deleted"] == {str(made["aircall_contact"]): "deleted"}
    assert sorted(steps["gmail"]["receipt"]["messages_deleted"]) == sorted(made["messages"])
    assert steps["switchboard"]["receipt"]["identities_removed"] >= 5  # email, phone, hubspot, happyfox, aircall

    # The other customer is intact everywhere.
    assert [c["properties"]["email"] for c in objects(flow, "hubspot", "contacts")] == [OTHER_EMAIL]
    assert len(flow.state("happyfox")["tickets"]) == 1
    # Tickets stay as anonymous statistics; the erased customer keeps no name.
    with store.session() as s:
        erased = s.scalars(select(Customer).where(Customer.erased_at.is_not(None))).all()
        assert len(erased) == 1 and erased[0].first_name is None and erased[0].last_name is None
    assert len(tickets()) == 3 and sum(t.subject is None for t in tickets()) == 2


def test_erasure_is_idempotent_and_audited_with_hashes_only(flow):
    present_everywhere(flow)
    first = erasure.request(email=EMAIL)
    assert erasure.request(phone=PHONE) == first  # one open request per person
    assert erasure.run(first) == "done"
    flow.clear_calls()
    assert erasure.run(first) == "done" and flow.calls() == []  # a finished request does nothing again
    with store.session() as s:
        actions = [a.action for a in s.scalars(select(Audit).order_by(Audit.id))]
        assert "erasure.requested" in actions and actions[-1] == "erasure.completed"
        assert s.scalar(select(Tombstone).limit(1)) is not None
    assert database_traces() == []

    # A second request for the same person finds nothing left, and completes with "already gone" or empty counts.
    again = erasure.request(email=EMAIL)
    assert again != first and erasure.run(again) == "done"
    receipt = {s["processor"]: s["receipt"] for s in erasure.status(again)["steps"]}
    assert receipt["gmail"]["counts"] == {"messages": 0}
    assert receipt["hubspot"]["counts"]["tickets"] == 0

    # By phone, the archived calls are found again: already archived, nothing left to delete, no failure.
    by_phone = erasure.request(phone=PHONE)
    assert erasure.run(by_phone) == "done"
    aircall = {s["processor"]: s["receipt"] for s in erasure.status(by_phone)["steps"]}["aircall"]
    assert aircall["counts"] == {"calls": 2, "recordings": 0, "voicemails": 0, "contacts": 0}
    assert set(aircall["calls_archived"].values()) == {"already_archived"}
    assert aircall["retained_by_vendor"]["call_log"] == sorted(aircall["calls_archived"])


def test_stale_vendor_data_cannot_bring_the_person_back(flow):
    made = present_everywhere(flow)
    erasure_id = erasure.request(email=EMAIL)
    assert erasure.run(erasure_id) == "done"
    before = len(customers())

    # A late Aircall webhook for one of the erased calls (a voicemail event: its call.ended is a stored repeat).
    call = {"id": made["calls"][0], "direction": "inbound", "raw_digits": "+36 30 123 4567", "started_at": 1,
            "ended_at": 61, "duration": 60, "answered_at": 9, "contact": {}, "user": {}, "number": {},
            "voicemail": "https://example.com/voicemail.mp3"}
    late = deliver("aircall", {"resource": "call", "event": "call.voicemail_left", "data": call})
    assert late.status == 202 and late.outcome == "done"
    # A HappyFox event about the deleted mailbox ticket.
    stale = {"id": int(made["happyfox_ticket"]), "last_modified": "2099-01-01 00:00:00"}  # a change not seen yet
    assert deliver("happyfox", stale).outcome == "done"
    assert len(customers()) == before and database_traces() == []
    assert tombstones.is_tombstoned(aircall_call=made["calls"][0])
    assert tombstones.is_tombstoned(email=EMAIL)

    # A new, explicit contact from the same person starts a new customer.
    assert run(put_form(EMAIL)) == "done"
    live = [c for c in customers() if c.erased_at is None]
    assert len(live) == 1
    with store.session() as s:
        assert s.scalar(select(Customer).where(Customer.erased_at.is_not(None))).id != live[0].id
    from datetime import datetime, timedelta, timezone
    assert not tombstones.is_tombstoned(email=EMAIL, occurred_at=datetime.now(timezone.utc) + timedelta(seconds=1))


def test_a_person_switchboard_never_saw_is_erased_from_the_vendors(flow):
    from sandbox.gmail import add_message
    add_message(flow.running.sandbox, "stranger@example.com", "support@example.com", "Hello", "Hi")
    erasure_id = erasure.request(email="stranger@example.com")
    assert erasure.run(erasure_id) == "done"
    assert flow.state("gmail")["messages"] == {}
    assert database_traces("stranger@example.com") == []


def test_inbox_payloads_of_the_person_are_redacted(flow):
    present_everywhere(flow)
    erasure_id = erasure.request(email=EMAIL)
    erasure.run(erasure_id)
    with store.session() as s:
        rows = {row.source: row.payload for row in s.scalars(select(InboxEvent))}
    assert rows["form"] == {"erased": erasure_id} and rows["aircall"] == {"erased": erasure_id}
    happyfox_id = rows["happyfox"]["ticket_id"]
    assert rows["happyfox"] == {"ticket_id": happyfox_id, "ticket": {"id": happyfox_id}}  # held nothing personal


def test_cli_erase_status_and_list(flow, settings):
    """The commands over a database of their own settings (DATABASE_URL, SECRET_KEY): the request is queued by the
    CLI, run by a worker (here, in-process), and followed with `erasure status` and `erasure list`."""
    from core import jobs
    from core import settings as settings_module
    from switchboard.cli import main
    present_everywhere(flow)
    runner = CliRunner(env={"DATABASE_URL": settings.env.database_url,
                            "SECRET_KEY": settings.env.secret("secret_key")})
    try:
        result = runner.invoke(main, ["erase", "--email", EMAIL, "--queue"])
        assert result.exit_code == 0, result.output
        assert "queued" in result.output and EMAIL not in result.output
        erasure_id = erasure.listing()[0]["id"]
        pending = runner.invoke(main, ["erasure", "status", str(erasure_id)])
        assert pending.exit_code == 3 and "pending" in pending.output  # not complete: a non-zero exit
        settings_module.use(settings)
        assert erasure.run(erasure_id) == "done"
        status = runner.invoke(main, ["erasure", "status", str(erasure_id), "--json"])
        assert status.exit_code == 0 and '"status": "done"' in status.output and EMAIL not in status.output
        listing = runner.invoke(main, ["erasure", "list"])
        assert listing.exit_code == 0 and "hubspot:done" in listing.output
        assert runner.invoke(main, ["erase"]).exit_code == 2  # neither --email nor --phone
    finally:
        settings_module.use(settings)
        jobs.huey.flush()  # the queued steps ran here; no later test's worker may pick them up


def test_no_trace_on_sqlite_and_postgresql(database_url, sandbox):
    """The erasure and its own residue check over both engines (JSON columns read back differently)."""
    from core import settings as settings_module
    from tests.conftest import make_settings
    loaded = settings_module.use(make_settings(database_url, sandbox))
    store.upgrade(database_url)
    try:
        quick()
        present_everywhere(sandbox)
        assert erasure.run(erasure.request(phone=PHONE)) == "done"
        assert database_traces() == []
        assert unexplained_traces(sandbox) == []
    finally:
        settings_module.use(None)
        store.dispose()
    assert loaded is not None


def _queued(name: str) -> list[tuple]:
    from core import jobs
    return [tuple(task.args) for task in jobs.huey.pending() if task.name.endswith(name)]


def test_the_jobs_chain_to_the_last_step_and_the_sweep_requeues_failures(flow):
    from datetime import timedelta

    from core import jobs
    from core.models import ErasureStep
    jobs.huey.flush()
    present_everywhere(flow)
    erasure_id = erasure.request(email=EMAIL)
    erasure.start(erasure_id)
    assert sorted(p for _, p in _queued("erasure_step")) == ["aircall", "gmail", "happyfox", "hubspot"]
    jobs.huey.flush()

    flow.fault(service="gmail", method="POST", path="/gmail/v1/users/*", status=400, times=1)  # permanent
    for processor in ("hubspot", "happyfox", "aircall"):
        assert erasure.erasure_step.call_local(erasure_id, processor) == "done"
    assert erasure.erasure_step.call_local(erasure_id, "gmail") == "failed"  # not retried by huey: visible
    assert _queued("erasure_step") == []  # the last step waits for gmail
    assert erasure.sweep_erasures.call_local() == 0  # too fresh to be called lost
    with store.session() as s:
        for step in s.scalars(select(ErasureStep).where(ErasureStep.erasure_id == erasure_id)):
            step.updated_at = step.updated_at - timedelta(minutes=20)
    assert erasure.sweep_erasures.call_local() == 1
    assert sorted(p for _, p in _queued("erasure_step")) == ["gmail"]
    jobs.huey.flush()
    assert erasure.erasure_step.call_local(erasure_id, "gmail") == "done"
    assert _queued("erasure_step") == [(erasure_id, "switchboard")]  # the last processor chains Switchboard's step
    assert erasure.erasure_step.call_local(erasure_id, "switchboard") == "done"
    assert erasure.status(erasure_id)["status"] == "done"
    jobs.huey.flush()


def test_a_new_caller_from_an_erased_number_gets_a_contact_of_their_own(flow):
    """The phone-only HubSpot contact is recorded per number (flows/identity.py): erasure removes that record,
    or the next caller from the number would be handed the erased contact."""
    def call(call_id: int) -> int:
        data = {"id": call_id, "direction": "inbound", "raw_digits": "06 30 123 4567", "started_at": 1,
                "ended_at": 61, "duration": 60, "answered_at": 9, "contact": None, "user": {}, "number": {}}
        return deliver("aircall", {"resource": "call", "event": "call.ended", "data": data}, run=False).inbox_id

    assert run(call(3001)) == "done"
    [erased] = objects(flow, "hubspot", "contacts")
    assert erasure.run(erasure.request(phone=PHONE)) == "done"
    assert objects(flow, "hubspot", "contacts") == [] and database_traces() == []

    assert run(call(3002)) == "done"
    [contact] = objects(flow, "hubspot", "contacts")
    assert contact["id"] != erased["id"] and contact["properties"]["phone"] == PHONE
    [logged] = objects(flow, "hubspot", "calls")
    assert {a["to"][1] for a in flow.state("hubspot")["associations"] if a["from"] == ["calls", logged["id"]]} \
        == {contact["id"]}
