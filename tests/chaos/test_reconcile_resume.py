"""A reconciliation that dies half-way resumes from its cursor: what it repaired before the crash is not looked at
again, what it had not reached is repaired, and every ticket ends with exactly one survey."""
from __future__ import annotations

import pytest

from flows.closure import reconcile

from ..integration.flowkit import fast_vendors
from ..integration.test_closure import form_ticket, fresh, mirror_stage, set_status, surveys

COUNT = 5


class Crash(RuntimeError):
    """The process dying between two tickets."""




@pytest.fixture
def lost_closures(any_database, sandbox):
    """Five tickets closed in HappyFox whose webhooks never arrived."""
    fast_vendors()
    made = [form_ticket(f"vevo{n}@example.com") for n in range(COUNT)]
    for ticket in made:
        set_status(ticket, "Closed")
    return made


def survey_fixes(report: reconcile.ReconcileResult) -> set[int]:
    return {f.ticket_id for f in report.fixes if f.kind == "survey"}


def test_a_crash_between_tickets_resumes_after_the_last_one_done(sandbox, lost_closures):
    seen = []

    def crash_after_two(name: str, done: int, total: int | None) -> None:
        if done:
            seen.append(name)
        if len(seen) == 2:
            raise Crash("killed")

    with pytest.raises(Crash):
        reconcile.reconcile(on_step=crash_after_two)
    cursor = reconcile.load_cursor()
    # The ids done at the cursor's position (a whole second): both, or only the second when a second ticks between.
    assert cursor["phase"] == "happyfox" and 1 <= len(cursor["done"]) <= 2
    assert len(surveys(sandbox)) == 2

    resumed = reconcile.reconcile()
    assert resumed.resumed
    first_two = {t.id for t in lost_closures if fresh(t).survey_sent_at is not None} - survey_fixes(resumed)
    assert len(first_two) == 2 and len(survey_fixes(resumed)) == COUNT - 2  # the first two were not redone
    assert reconcile.load_cursor()["phase"] == "done"
    assert sorted(m["to"][0] for m in surveys(sandbox)) == sorted(f"vevo{n}@example.com" for n in range(COUNT))
    assert all(mirror_stage(sandbox, t) == "4" and fresh(t).is_closed for t in lost_closures)
    assert reconcile.reconcile().fixes == []


def test_a_vendor_outage_mid_run_is_resumed_by_the_next_run(sandbox, lost_closures):
    sandbox.fault(service="hubspot", method="PATCH", path="/crm/v3/objects/tickets/*", status=503, times=1000)
    with pytest.raises(Exception) as failed:
        reconcile.reconcile()
    assert "hubspot" in str(failed.value).lower()
    assert len(surveys(sandbox)) == 1  # the first ticket's survey went out before its mirror write failed
    sandbox.http.delete("/_sandbox/faults").raise_for_status()
    resumed = reconcile.reconcile()
    assert resumed.resumed and len(surveys(sandbox)) == COUNT
    assert all(mirror_stage(sandbox, t) == "4" for t in lost_closures)
    assert len(survey_fixes(resumed)) == COUNT - 1
