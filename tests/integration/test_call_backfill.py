"""Calls made while the Aircall webhook was off are backfilled by reconciliation (`switchboard sync`) from Aircall's
call list, by cursor, through the same inbox key and flow as the webhook: nothing twice, whichever comes first,
and an Aircall that answers 429 or 5xx for a while only delays it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connectors.errors import Unavailable
from flows import vendors
from flows.closure import reconcile
from sandbox.aircall import simulate_call

from .delivery import deliver, form_body
from .flowkit import inbox_rows, objects, run, tickets, website_form, writes

LIST = ("aircall", "GET", "/v1/calls")


def run_queued() -> list[str]:
    """The worker's part: run every Aircall event still pending."""
    return [run(r.id) for r in inbox_rows("aircall") if r.status == "pending"]


def calls_fixed(report: reconcile.ReconcileResult) -> int:
    return report.counts()["call"]


def test_calls_missed_by_the_webhook_are_backfilled_once(flow):
    running = flow.running.sandbox  # the webhook is off: the fake sends nothing
    answered = simulate_call(running, "inbound", "+36 30 123 4567", 120)
    missed = simulate_call(running, "inbound", "+36 20 999 8877", 0, answered=False)
    report = reconcile.reconcile()
    assert calls_fixed(report) == 2
    assert [(r.event_key, r.kind) for r in inbox_rows("aircall")] == [
        (f"call.ended:{answered['id']}", "call.ended"), (f"call.ended:{missed['id']}", "call.ended")]
    assert run_queued() == ["done", "done"]
    assert len(objects(flow, "hubspot", "calls")) == 2
    [ticket] = tickets()
    assert ticket.source_key == f"aircall-call:{missed['id']}"

    # The next run reads from its cursor: no call again, nothing stored, nothing written.
    flow.clear_calls()
    again = reconcile.reconcile()
    assert calls_fixed(again) == 0 and len(inbox_rows("aircall")) == 2
    assert [w for w in writes(flow) if w[0] != "aircall" and w[1] != "GET" and "search" not in w[2]] == []
    # The webhook, back on, delivers the old event late: a repeat of the same key.
    late = deliver("aircall", {"resource": "call", "event": "call.ended", "timestamp": 1, "data": answered})
    assert late.status == 200 and len(inbox_rows("aircall")) == 2


def test_a_call_the_webhook_brought_is_not_backfilled_again(flow):
    running = flow.running.sandbox
    made = simulate_call(running, "inbound", "+36 30 123 4567", 60)
    assert deliver("aircall", {"resource": "call", "event": "call.ended", "timestamp": 1,
                               "data": made}).outcome == "done"
    report = reconcile.reconcile()
    assert calls_fixed(report) == 0 and len(inbox_rows("aircall")) == 1
    assert len(objects(flow, "hubspot", "calls")) == 1


def test_a_tag_added_while_the_webhook_was_off_reaches_the_ticket(flow):
    assert deliver("form", form_body(website_form())).outcome == "done"
    running = flow.running.sandbox
    made = simulate_call(running, "inbound", "+36 30 123 4567", 60)
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    assert deliver("aircall", {"resource": "call", "event": "call.ended", "timestamp": 1,
                               "data": {**made, "contact": {"id": 1, "emails": [{"value": "kata.kovacs@example.com"}]}}}
                   ).outcome == "done"
    with running.lock:
        running.state["aircall"]["calls"][made["id"]]["tags"] = [{"id": 7, "name": "Refund"}]
    report = reconcile.reconcile(since=start)
    assert calls_fixed(report) == 1
    [hf] = flow.state("happyfox")["tickets"].values()
    texts = [u["message"]["text"] for u in hf["updates"] if u.get("message")]
    assert sum("Aircall címke: Refund" in t for t in texts) == 1
    assert calls_fixed(reconcile.reconcile(since=start)) == 0  # noted once


def test_a_rate_limited_call_list_is_waited_out(flow):
    simulate_call(flow.running.sandbox, "outbound", "+36 30 123 4567", 30)
    vendors.get().aircall.policy.max_inline_wait = 3  # X-AircallApi-Reset is in whole seconds
    flow.fault(service="aircall", method="GET", path="/v1/calls", status=429, retry_after=1, times=1)
    report = reconcile.reconcile()
    assert calls_fixed(report) == 1 and run_queued() == ["done"]
    assert writes(flow).count(LIST) == 2


def test_an_aircall_outage_stops_the_pass_and_the_next_run_backfills(flow):
    made = simulate_call(flow.running.sandbox, "inbound", "+36 30 123 4567", 30)
    flow.fault(service="aircall", method="GET", path="/v1/calls", status=503, times=2)  # both attempts
    with pytest.raises(Unavailable):
        reconcile.reconcile()
    assert inbox_rows("aircall") == []
    report = reconcile.reconcile()
    assert calls_fixed(report) == 1
    assert [r.event_key for r in inbox_rows("aircall")] == [f"call.ended:{made['id']}"]
    assert run_queued() == ["done"] and len(objects(flow, "hubspot", "calls")) == 1


def test_a_crash_mid_backfill_resumes_without_a_duplicate(flow, monkeypatch):
    running = flow.running.sandbox
    first = simulate_call(running, "inbound", "+36 30 123 4567", 30)
    second = simulate_call(running, "inbound", "+36 70 111 2222", 30)
    real = reconcile._backfill_call

    def crash_on_second(call, report):
        if call.id == str(second["id"]):
            raise RuntimeError("crash")
        return real(call, report)

    monkeypatch.setattr(reconcile, "_backfill_call", crash_on_second)
    with pytest.raises(RuntimeError):
        reconcile.reconcile()
    monkeypatch.setattr(reconcile, "_backfill_call", real)
    report = reconcile.reconcile()
    assert calls_fixed(report) == 1  # the second only: the first is behind the cursor
    assert [r.event_key for r in inbox_rows("aircall")] == [f"call.ended:{first['id']}", f"call.ended:{second['id']}"]
    assert run_queued() == ["done", "done"] and len(objects(flow, "hubspot", "calls")) == 2
