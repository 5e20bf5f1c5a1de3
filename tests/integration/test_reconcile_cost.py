"""A reconcile's vendor calls follow the changes, not the tickets Switchboard holds (#14 P4): the same 10 changes
cost the same calls among 60 tickets in step and among 300, whether those were last modified days before or
earlier the same day (HappyFox's listing filters by date only). The timed figures are bench/reconcile.py's."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from bench import reconcile as bench
from flows.closure import reconcile

CHANGES = 10


def run_with_changes(flow, tickets: list[dict]) -> dict[str, int]:
    bench.change(tickets)
    time.sleep(1.1)  # the changes' second is over, as for a later run
    flow.clear_calls()
    report = reconcile.reconcile()
    flow.wait_idle()
    assert report.counts()["wrong_stage"] == len(tickets) and sum(report.counts().values()) == len(tickets)
    return dict(bench.calls(flow.http))


@pytest.mark.parametrize("scenario", ["older", "today"])
def test_the_same_changes_cost_the_same_calls_among_five_times_the_tickets(flow, scenario):
    now = datetime.now(timezone.utc)
    try:
        stamps = bench.stamps(300, scenario, now)
    except bench.TooEarly as exc:
        pytest.skip(str(exc))
    few = bench.seed(flow.http, stamps[::5])  # 60 tickets spread over the same hours as the 300
    assert reconcile.reconcile(since=now - timedelta(seconds=1)).fixes == []
    among_few = run_with_changes(flow, few[::6][:CHANGES])
    more = bench.seed(flow.http, [s for n, s in enumerate(stamps) if n % 5], first=len(few))  # 240 more, as old
    # The first run's changes lie within this run's overlap and are read again, repairing nothing.
    among_many = run_with_changes(flow, (few[3::6] + more)[:CHANGES])
    assert among_many == among_few
    listings = sum(n for call, n in among_many.items() if call.startswith("happyfox GET"))
    assert listings <= 3 * 2  # each of the three HappyFox passes: the newest-first page, at most one more
