"""The inbox job as huey runs it: one claim per attempt, failed with huey's retry scheduled, dead when the retries
are spent, the sweep that re-enqueues rows a lost queue or a killed worker left behind, and one end-to-end run
through a real consumer."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from core import jobs, store
from core.models import InboxEvent
from flows import dispatch, inbox, routes

from .flowkit import objects, put, queue, row, signed, tickets, website_form  # noqa: F401 - queue is a fixture


def age(inbox_id: int, status: str, minutes: float) -> None:
    with store.session() as s:
        s.execute(update(InboxEvent).where(InboxEvent.id == inbox_id).values(
            status=status, updated_at=datetime.now(timezone.utc) - timedelta(minutes=minutes)))


def stored_form(email: str = "kata.kovacs@example.com") -> int:
    """A form's row stored with no job queued for it: these tests queue (or lose) the jobs themselves."""
    return put("form", "form", website_form(email))


def queued_ids(queue, now: bool = False) -> list[int]:
    """The rows whose jobs are queued; `now`: only those to run at once, not a retry queued for later."""
    tasks = [queue.deserialize_task(m) for m in queue.storage.enqueued_items()]
    return sorted(t.args[0] for t in tasks if not (now and t.eta))


def test_the_receiver_queues_one_dispatch_job_per_batch_which_fans_out(queue, settings):
    from webhooks.app import create_app
    client = create_app(settings).test_client()
    secret = settings.env.secret("form_webhook_secret")
    ids = []
    for n in range(3):
        raw, headers = signed(secret, {"form": "product", "fields": {"nev": f"Kiss {n}", "email": f"k{n}@example.com",
                                                                     "targy": "t", "uzenet": "u"}})
        ids.append(int(client.post("/webhooks/form", data=raw, headers=headers).get_json()["id"]))
    deadline = time.monotonic() + 5
    queued: list = []
    while time.monotonic() < deadline and sorted(i for t in queued for i in t.args[0]) != ids:
        time.sleep(0.05)
        queued = [queue.deserialize_task(m) for m in queue.storage.enqueued_items()]
    assert {t.name.rsplit(".", 1)[-1] for t in queued} == {"dispatch_inbox"}
    assert sorted(i for t in queued for i in t.args[0]) == ids
    queue.flush()
    assert dispatch.dispatch_inbox.call_local(ids) == 3
    assert queued_ids(queue) == ids


def test_a_row_running_elsewhere_is_not_run_twice(queue, sandbox):
    inbox_id = stored_form()
    age(inbox_id, "running", 0)
    assert dispatch.run(inbox_id) == "skipped"
    assert sandbox.calls() == [] and row(inbox_id).attempts == 0


def test_huey_schedules_the_retry_of_a_failed_attempt_and_the_last_one_ends_dead(queue, sandbox):
    sandbox.fault(service="hubspot", method="POST", path="/crm/v3/objects/contacts/batch/upsert", status=503,
                  times=100)
    inbox_id = stored_form()
    task = dispatch.process_inbox.s(inbox_id)
    assert task.retries == jobs.RETRIES
    queue.execute(task)
    assert row(inbox_id).status == "failed" and row(inbox_id).last_error == "Unavailable: hubspot HTTP 503"
    assert queue.scheduled_count() == 1  # huey's own backoff will run it again

    last = dispatch.process_inbox.s(inbox_id)
    last.retries = 0
    queue.execute(last)
    assert row(inbox_id).status == "dead" and row(inbox_id).attempts == 2
    assert queue.scheduled_count() == 1  # no retry added for the dead one


def test_too_many_attempts_end_dead_even_without_huey_counting(queue, sandbox):
    sandbox.fault(service="hubspot", method="POST", path="/crm/v3/objects/contacts/batch/upsert", status=503,
                  times=100)
    inbox_id = stored_form()
    with store.session() as s:
        s.execute(update(InboxEvent).where(InboxEvent.id == inbox_id).values(attempts=jobs.RETRIES))
    with pytest.raises(Exception):
        dispatch.run(inbox_id, retries_left=3)
    assert row(inbox_id).status == "dead"


def test_the_sweep_requeues_what_was_left_behind_and_only_that(queue, sandbox):
    lost = stored_form("lost@example.com")          # queued long ago, never picked up
    killed = stored_form("killed@example.com")      # a worker died while running it
    retrying = stored_form("retrying@example.com")  # failed a moment ago: huey's retry is still to come
    fresh = stored_form("fresh@example.com")        # just arrived
    dead = stored_form("dead@example.com")
    age(lost, "pending", 10)
    age(killed, "running", 1)                     # its lease was not renewed for a minute
    age(retrying, "failed", 1)
    age(dead, "dead", 600)
    queue.flush()
    dispatch.process_inbox.schedule((retrying,), delay=60)  # huey's retry of the failed row, still to come
    assert dispatch.sweep_inbox.call_local() == 2
    assert queued_ids(queue, now=True) == sorted([lost, killed])
    assert row(killed).status == "failed" and row(killed).last_error == "WorkerLost"
    assert row(fresh).status == "pending" and row(dead).status == "dead"
    assert dispatch.sweep_inbox.call_local() == 0  # taken once: a second sweep (another worker's) queues nothing


def test_with_nothing_queued_a_row_waiting_half_a_minute_is_orphaned(queue, sandbox):
    """Nothing waits in the queue and no retry is scheduled (a Redis restart lost them, the process that was to
    queue a stored event died): rows pending or failed for 30 s have no job left, and are queued again."""
    pending, failed, fresh = stored_form("p@example.com"), stored_form("f@example.com"), stored_form("n@example.com")
    age(pending, "pending", 0.75)
    age(failed, "failed", 0.75)
    age(fresh, "pending", 0.1)
    queue.flush()
    assert dispatch.recover_inbox() == 2
    assert queued_ids(queue) == sorted([pending, failed])


def test_a_running_row_whose_lease_is_renewed_is_never_taken(queue, sandbox, monkeypatch):
    """A worker that lives renews its claim: however long its handler runs, the sweep leaves the row alone; once
    the renewals stop (the process died), the row is released within the stale limit."""
    from flows import leases
    inbox_id = stored_form("slow@example.com")
    seen = {}

    def slow(event):
        age(inbox_id, "running", 1)        # as if a minute of work had passed since the claim...
        leases.renew_all()                 # ...with the heartbeat renewing it meanwhile
        seen["stale"] = inbox.stale(queue_idle=True)

    monkeypatch.setitem(routes.ROUTES, ("form", "form"), (slow,))
    assert dispatch.run(inbox_id) == "done"
    assert inbox_id not in seen["stale"]


def test_the_sweep_does_not_release_a_row_a_worker_claimed_after_it_was_found_stale(queue, sandbox):
    inbox_id = stored_form("claimed@example.com")
    age(inbox_id, "pending", 10)
    found = inbox.stale()
    assert inbox_id in found
    age(inbox_id, "running", 0)  # a worker picks it up between the sweep's select and its update
    queue.flush()
    dispatch.requeue(found)
    assert row(inbox_id).status == "running" and row(inbox_id).last_error is None


def test_the_sweep_is_a_periodic_job(queue):
    due = [task.name for task in queue.read_periodic(datetime(2026, 11, 24, 10, 7))]
    assert any(name.endswith("sweep_inbox") for name in due)


def test_end_to_end_through_the_receiver_and_a_real_consumer(queue, settings, sandbox):
    from webhooks.app import create_app
    client = create_app(settings).test_client()
    raw, headers = signed(settings.env.secret("form_webhook_secret"), {
        "form": "website", "fields": {"vezeteknev": "Végig", "keresztnev": "Vera", "email": "vera@example.com",
                                      "cel": "erdeklodes", "termek": "GDPR Segédanyagok", "rovid_leiras": "Ajánlat"}})
    answer = client.post("/webhooks/form", data=raw, headers=headers)
    assert answer.status_code == 202
    inbox_id = int(answer.get_json()["id"])
    assert row(inbox_id).status == "pending"  # committed before the answer; its job is queued just after
    consumer = jobs.consumer(workers=1, target=queue)
    consumer.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and row(inbox_id).status != "done":
            time.sleep(0.05)
    finally:
        consumer.stop(graceful=True)
    assert row(inbox_id).status == "done"
    [ticket] = tickets()
    assert ticket.told_id and len(objects(sandbox, "hubspot", "tickets")) == 1 and len(sandbox.mail()) == 1


def test_a_long_rate_limit_pause_is_waited_out_not_spent_on_retries(queue, sandbox):
    """HappyFox's 429 locks the client out for 10 minutes: the job is scheduled after the pause, retries kept."""
    sandbox.fault(service="happyfox", method="POST", path="/api/1.1/json/tickets/", status=429, times=1,
                  retry_after=600)
    inbox_id = stored_form()
    task = dispatch.process_inbox.s(inbox_id)
    queue.execute(task)
    assert row(inbox_id).status == "failed" and row(inbox_id).last_error.startswith("RateLimited: happyfox")
    [scheduled] = queue.scheduled()
    assert scheduled.retries == jobs.RETRIES  # no retry spent
    wait = (scheduled.eta - datetime.now(timezone.utc).replace(tzinfo=None)).total_seconds()
    assert 590 < wait <= 600


def test_a_write_in_flight_elsewhere_is_retried_without_a_traceback(queue, sandbox, monkeypatch, caplog):
    """Two jobs making one write at once (intake and HappyFox's echo both routing a complaint): the loser is
    retried a little later, logged in one line, not as an unhandled exception."""
    from flows import effects

    def contended(event):
        raise effects.InFlight("complaint-route:1")
    monkeypatch.setattr(routes, "handlers_for", lambda source, kind: (contended,))
    inbox_id = stored_form("busy@example.com")
    with caplog.at_level("INFO"), caplog.at_level("INFO", logger="huey"):  # another test may have quietened huey
        queue.execute(dispatch.process_inbox.s(inbox_id))
    assert row(inbox_id).status == "failed" and row(inbox_id).last_error.startswith("InFlight")
    assert not [r for r in caplog.records if r.exc_info]  # nobody logged a traceback
    assert any("RetryTask" in r.getMessage() for r in caplog.records)
    [retry] = [queue.deserialize_task(m) for m in queue.storage.scheduled_items()]
    assert retry.args == (inbox_id,)
