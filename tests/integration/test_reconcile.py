"""Reconciliation over the sandbox: every kind of drift that lost or failed events leave behind is found and
repaired through the same flows, a second run finds nothing, the vendors are read in batches, and
`switchboard sync` prints what it fixed."""
from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from core import store
from core.models import Erasure, Ticket
from core.settings import SANDBOX_DEFAULTS
from flows.closure import reconcile
from tests.conftest import SWITCHBOARD

from .flowkit import fast_vendors, objects, tickets, writes
from .test_closure import deliver_ticket, form_ticket, fresh, mirror_stage, set_status, surveys

SEARCH = ("hubspot", "POST", "/crm/v3/objects/tickets/search")


def age(ticket: Ticket, hours: int = 1) -> None:
    """Make our row older than reconciliation's grace period for tickets still in intake."""
    with store.session() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket.id)
                  .values(opened_at=datetime.now(timezone.utc) - timedelta(hours=hours)))


def untouched_in_happyfox(sandbox, ticket: Ticket) -> None:
    """The HappyFox ticket was last modified long before the reconciliation window."""
    running = sandbox.running.sandbox
    with running.lock:
        running.state["happyfox"]["tickets"][ticket.happyfox_id]["last_modified"] = "2020-01-01 00:00:00"


def kinds(report: reconcile.ReconcileResult) -> dict[str, int]:
    return {kind: n for kind, n in report.counts().items() if n}


def test_a_closure_whose_event_was_lost_is_closed_mirrored_and_surveyed(flow):
    ticket = form_ticket()
    set_status(ticket, "Closed")  # the smart rule's webhook never arrives
    flow.clear_calls()
    report = reconcile.reconcile()
    assert kinds(report) == {"status": 1, "wrong_stage": 1, "survey": 1}
    assert mirror_stage(flow, ticket) == "4" and fresh(ticket).is_closed and len(surveys(flow)) == 1
    # One search read the mirror's stage (a batch of ids), one listed HubSpot's changes; no single GETs.
    assert writes(flow).count(SEARCH) == 2
    assert not [w for w in writes(flow) if w[0] == "hubspot" and w[1] == "GET"]
    again = reconcile.reconcile()
    assert again.fixes == [] and len(surveys(flow)) == 1


def test_close_delivered_three_times_with_a_reconciliation_between_sends_one_survey(flow):
    ticket = form_ticket()
    closed = set_status(ticket, "Closed")
    deliver_ticket(closed, key="a")
    reconcile.reconcile(since=datetime.now(timezone.utc) - timedelta(hours=1))
    deliver_ticket(closed, key="b")
    deliver_ticket(closed, key="c")
    assert len(surveys(flow)) == 1 and mirror_stage(flow, ticket) == "4"


def test_a_mailbox_ticket_whose_event_was_lost_is_registered_and_mirrored(flow):
    made = fast_vendors().happyfox.create_ticket(subject="Elveszett levél", text="Segítség", category=6,
                                                 email="elveszett@example.com", name="Elveszett Ede").raw
    report = reconcile.reconcile()
    assert kinds(report) == {"missing_mirror": 1}
    [row] = tickets()
    [mirror] = objects(flow, "hubspot", "tickets")
    assert row.happyfox_id == made["id"] and row.hubspot_ticket_id == mirror["id"]
    assert [m["to"] for m in flow.mail()] == [["elveszett@example.com"]]  # the confirmation, once
    assert reconcile.reconcile().fixes == []


def test_a_mirror_deleted_in_hubspot_is_made_again(flow):
    ticket = form_ticket()
    deliver_ticket(set_status(ticket, "In Progress"))
    age(ticket)
    assert fast_vendors().hubspot.archive_ticket(ticket.hubspot_ticket_id) == "deleted"
    report = reconcile.reconcile()
    assert kinds(report) == {"missing_mirror": 1}
    [mirror] = objects(flow, "hubspot", "tickets")
    assert mirror["id"] != ticket.hubspot_ticket_id and fresh(ticket).hubspot_ticket_id == mirror["id"]
    assert mirror["properties"]["hs_pipeline_stage"] == "3"  # made at the stage its status maps to
    contact = [a for a in flow.state("hubspot")["associations"] if a["from"] == ["tickets", mirror["id"]]]
    assert len(contact) == 1 and contact[0]["typeId"] == 16
    assert reconcile.reconcile().fixes == [] and len(objects(flow, "hubspot", "tickets")) == 1


def test_a_missing_link_to_an_existing_mirror_is_restored_without_a_second_mirror(flow):
    ticket = form_ticket()
    age(ticket)
    with store.session() as s:  # the crash between HubSpot's answer and our row's update
        s.execute(update(Ticket).where(Ticket.id == ticket.id).values(hubspot_ticket_id=None))
    report = reconcile.reconcile()
    assert kinds(report) == {"missing_link": 1}
    assert fresh(ticket).hubspot_ticket_id == ticket.hubspot_ticket_id
    assert len(objects(flow, "hubspot", "tickets")) == 1


def test_a_young_row_without_mirror_is_left_to_intake(flow):
    ticket = form_ticket()
    with store.session() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket.id).values(hubspot_ticket_id=None))
    assert reconcile.reconcile().fixes == []
    assert fresh(ticket).hubspot_ticket_id is None


def test_a_stage_changed_in_hubspot_whose_event_was_lost_is_put_back(flow):
    ticket = form_ticket()
    untouched_in_happyfox(flow, ticket)
    fast_vendors().hubspot.update_ticket(ticket.hubspot_ticket_id, {"hs_pipeline_stage": "2"})
    report = reconcile.reconcile(since=datetime.now(timezone.utc) - timedelta(hours=1))
    assert kinds(report) == {"wrong_stage": 1}  # found by the HubSpot pass: HappyFox had nothing new
    assert mirror_stage(flow, ticket) == "1"


def test_a_closed_ticket_without_its_survey_gets_it(flow):
    ticket = form_ticket()
    closed = set_status(ticket, "Closed")
    with store.session() as s:  # closed and mirrored, but the survey mail failed for good
        s.execute(update(Ticket).where(Ticket.id == ticket.id)
                  .values(status="Closed", is_closed=True, closed_at=datetime.now(timezone.utc)))
    fast_vendors().hubspot.update_ticket(ticket.hubspot_ticket_id, {"hs_pipeline_stage": "4"})
    report = reconcile.reconcile()
    assert kinds(report) == {"survey": 1} and len(surveys(flow)) == 1
    assert closed["id"] == ticket.happyfox_id


def test_a_rate_limited_search_is_waited_out(flow):
    ticket = form_ticket()
    set_status(ticket, "Solved")
    fast_vendors().hubspot.policy.max_inline_wait = 2  # HubSpot's 429 says wait 1 s: waited out inline
    flow.fault(service="hubspot", method="POST", path="/crm/v3/objects/tickets/search", status=429, times=1,
               retry_after=1)
    report = reconcile.reconcile()
    assert "survey" in kinds(report) and mirror_stage(flow, ticket) == "4"
    assert any(c["status"] == 429 for c in flow.calls("hubspot"))


def test_two_runs_at_once_do_not_both_repair(flow):
    assert reconcile._take_lease()
    try:
        with pytest.raises(reconcile.Busy):
            reconcile.reconcile()
        assert reconcile.reconcile_job.call_local() == 0
    finally:
        reconcile._release_lease()
    assert reconcile.reconcile().fixes == []


def test_sync_command_prints_what_it_fixed(flow, settings, tmp_path):
    ticket = form_ticket()
    set_status(ticket, "Closed")
    env = {**os.environ, "DATABASE_URL": settings.env.database_url, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(flow.smtp_port), "LOG_LEVEL": "WARNING",
           "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "none.json")}
    env.update({name.upper(): value for name, value in SANDBOX_DEFAULTS.items()})
    env.update({f"{v}_BASE_URL": flow.base_url for v in ("HUBSPOT", "HAPPYFOX", "AIRCALL", "GMAIL")})
    command = list(SWITCHBOARD)
    done = subprocess.run(command + ["sync", "--since", "2020-01-01"], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "fixed 3 (status: 1, wrong stage: 1, survey: 1)" in done.stdout
    assert "HappyFox tickets" not in done.stderr  # a pipe gets no progress bars (tests/integration/test_progress.py)
    assert len(surveys(flow)) == 1 and mirror_stage(flow, ticket) == "4"
    again = subprocess.run(command + ["sync"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to fix" in again.stdout
    bad = subprocess.run(command + ["sync", "--since", "yesterday"], capture_output=True, text=True, timeout=60,
                         env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "ISO date" in bad.stderr


def test_a_mirror_archived_by_an_erasure_in_progress_is_not_made_again(flow):
    ticket = form_ticket()
    age(ticket)
    with store.session() as s:
        s.add(Erasure(customer_id=ticket.customer_id, subject_hash="0" * 64, reason="request"))
    assert fast_vendors().hubspot.archive_ticket(ticket.hubspot_ticket_id) == "deleted"
    reconcile.reconcile()
    assert objects(flow, "hubspot", "tickets") == []


def test_a_ticket_no_retry_can_mend_is_reported_and_the_run_goes_on(flow):
    """A permanent vendor refusal on one ticket must not stop every ticket after it, run after run."""
    happyfox = fast_vendors().happyfox
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    first = happyfox.create_ticket(subject="Első", text="a", category=6, email="elso@example.com",
                                   name="Első Egon").raw
    second = happyfox.create_ticket(subject="Második", text="b", category=6, email="masodik@example.com",
                                    name="Második Mária").raw
    flow.fault(service="hubspot", method="POST", path="/crm/v3/objects/tickets", status=400, times=1)
    report = reconcile.reconcile(since=start)
    assert report.failed == [f"happyfox {first['id']}: InvalidRequest (HTTP 400)"]
    assert [row.happyfox_id for row in tickets() if row.hubspot_ticket_id] == [second["id"]]
    assert "elso@example.com" not in " ".join(report.failed)
    # Once HubSpot accepts it, a later run over the same window repairs the one left behind (once its row is past
    # the grace period that leaves young rows to intake).
    for row in tickets():
        age(row)
    again = reconcile.reconcile(since=start)
    assert again.failed == [] and sorted(row.happyfox_id for row in tickets() if row.hubspot_ticket_id) == \
        sorted([first["id"], second["id"]])
