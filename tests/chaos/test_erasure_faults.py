"""Erasure under faults: 429s and 500s on two processors make their steps fail visibly, with the reason and no
personal data; the request is not complete; retries (the job's, here run by hand) complete it, with the same
"no trace" result as a clean run, and nothing done twice is counted as done twice."""
from __future__ import annotations

import pytest

from flows.privacy import erasure
from tests.integration.privacykit import (
    EMAIL,
    database_traces,
    present_everywhere,
    quick,
    unexplained_traces,
)


@pytest.fixture
def flow(settings, sandbox):
    quick(attempts=2)  # two tries inside one step attempt, then the step fails and waits for its job's retry
    return sandbox


def test_429_and_500_on_two_processors_complete_after_retries(flow):
    present_everywhere(flow)
    # HubSpot: its archive answers 429 asking for a wait longer than a worker sleeps, so each one goes back to the
    # job queue; Aircall: three 500s, two per attempt (its inline retry), so the second attempt passes, where a
    # 503 on the first archive (an idempotent PUT) is retried inline.
    flow.fault(service="hubspot", method="DELETE", path="/crm/v3/objects/tickets/*", status=429, times=2,
               retry_after=5)
    flow.fault(service="aircall", method="DELETE", path="/v1/calls/*", status=500, times=3)
    flow.fault(service="aircall", method="PUT", path="/v1/calls/*", status=503, times=1)
    erasure_id = erasure.request(email=EMAIL)

    assert erasure.run(erasure_id) == "failed"
    state = erasure.status(erasure_id)
    steps = {s["processor"]: s for s in state["steps"]}
    assert steps["hubspot"]["status"] == "failed" and "429" in steps["hubspot"]["last_error"]
    assert steps["aircall"]["status"] == "failed" and "500" in steps["aircall"]["last_error"]
    assert steps["happyfox"]["status"] == "done" and steps["gmail"]["status"] == "done"
    assert steps["switchboard"]["status"] == "pending"  # waits for every processor
    assert state["completed_at"] is None and EMAIL not in str(state)

    assert erasure.run(erasure_id) == "failed"  # the second 429; Aircall's last 500 is retried inline
    steps = {s["processor"]: s for s in erasure.status(erasure_id)["steps"]}
    assert steps["aircall"]["status"] == "done" and steps["hubspot"]["status"] == "failed"

    assert erasure.run(erasure_id) == "done"
    state = erasure.status(erasure_id)
    steps = {s["processor"]: s for s in state["steps"]}
    assert all(s["status"] == "done" and s["last_error"] is None for s in steps.values())
    assert steps["hubspot"]["attempts"] == 3 and steps["aircall"]["attempts"] == 2
    assert steps["happyfox"]["attempts"] == 1 and steps["switchboard"]["attempts"] == 1
    assert steps["hubspot"]["receipt"]["counts"] == {"contacts": 1, "tickets": 2, "calls": 2}
    aircall = steps["aircall"]["receipt"]
    assert aircall["counts"]["recordings"] == 2 and set(aircall["recordings_deleted"].values()) == {"deleted"}
    assert len(aircall["calls_archived"]) == 2 and set(aircall["calls_archived"].values()) == {"archived"}
    assert [c["status"] for c in flow.calls("aircall") if c["method"] == "PUT"] == [503, 200, 200]
    assert unexplained_traces(flow) == []
    assert database_traces() == []


def test_a_step_that_fails_stays_visible_until_it_passes(flow):
    present_everywhere(flow)
    flow.fault(service="gmail", method="POST", path="/gmail/v1/users/*", status=500, times=100)
    flow.fault(service="happyfox", method="POST", path="/api/1.1/json/ticket/*", status=429, times=100, retry_after=600)
    erasure_id = erasure.request(email=EMAIL)
    for _ in range(3):
        assert erasure.run(erasure_id) == "failed"
    listed = {row["id"]: row for row in erasure.listing("failed")}
    assert listed[erasure_id]["steps"]["gmail"] == "failed"
    assert listed[erasure_id]["steps"]["happyfox"] == "failed"
    assert database_traces()  # Switchboard's own step has not run: identities are still there to retry with

    flow.http.delete("/_sandbox/faults").raise_for_status()
    assert erasure.run(erasure_id) == "done"
    assert database_traces() == []
