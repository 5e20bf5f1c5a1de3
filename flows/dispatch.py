"""The inbox job: every stored inbound event runs through `process_inbox(inbox_id)`, which claims its row
(flows/inbox.py), runs the handlers flows/routes.py names for its (source, kind), and records the outcome.

- A transient failure goes back to huey, which retries with backoff; a permanent one, or the last retry, leaves
  the row dead (flows/inbox.py says which is which).
- A sweep re-enqueues rows that a lost queue or a killed worker left behind: every worker runs it every few
  seconds (`core.jobs.recovery`), and the clock once a minute. Sweeps in several processes at once enqueue each
  row once: a row is taken for requeueing by a conditional UPDATE.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from huey.exceptions import RetryTask
from sqlalchemy import update

from core import jobs, store
from core.jobs import crontab
from core.models import InboxEvent

from flows.privacy import restriction

from . import alerts, effects, inbox, leases, routes

log = logging.getLogger(__name__)


def run(inbox_id: int, retries_left: int | None = None) -> str:
    """Process one inbox row; its status afterwards. `retries_left` is what huey has left for this job (None
    when called directly); the row's attempt count against core.jobs.RETRIES decides too."""
    event = inbox.claim(inbox_id)
    if event is None:
        log.info("inbox %s: not claimable (done, dead or running elsewhere)", inbox_id)
        return "skipped"
    with leases.held(lambda now: _renew(inbox_id, now)):
        return _run_claimed(event, retries_left)


def _renew(inbox_id: int, now: datetime) -> None:
    with store.session() as s:
        s.execute(update(InboxEvent).where(InboxEvent.id == inbox_id, InboxEvent.status == inbox.RUNNING)
                  .values(updated_at=now))


def _run_claimed(event: inbox.Event, retries_left: int | None) -> str:
    inbox_id = event.id
    handlers = routes.handlers_for(event.source, event.kind)
    if handlers and (held_for := restriction.holder(event)) is not None:
        # A restricted person (GDPR Art. 18/21): kept, not run, until the restriction is lifted and it is replayed.
        restriction.hold(event, held_for)
        inbox.finish(inbox_id, restriction.HELD, f"held: customer {held_for} is restricted")
        log.info("inbox %s: held, customer %s is restricted", inbox_id, held_for)
        return restriction.HELD
    try:
        with effects.attempt(retry=event.retry):
            for handler in handlers:
                handler(event)
    except Exception as exc:
        why = inbox.reason(exc)
        with store.session() as s:
            row = s.get(InboxEvent, inbox_id)
            attempts = row.attempts if row is not None else 0
        # huey's own count when it runs the job; the row's count too, since a sweep's re-enqueue starts afresh.
        exhausted = retries_left == 0 or attempts > jobs.RETRIES
        if inbox.is_permanent(exc) or exhausted:
            inbox.finish(inbox_id, "dead", why)
            log.error("inbox %s (%s %s) is dead after %s attempts: %s", inbox_id, event.source, event.kind,
                      attempts, why)
            alerts.raise_alert("inbox.dead", f"inbox.dead:{inbox_id}",
                               command=f"switchboard inbox replay {inbox_id}", page=f"/staff/inbox/{inbox_id}",
                               inbox_id=inbox_id, source=event.source, event_kind=event.kind, attempts=attempts,
                               reason=why)
            if inbox.is_permanent(exc):
                return "dead"  # no retry can help: huey is not asked for one
        else:
            inbox.finish(inbox_id, "failed", why)
            log.warning("inbox %s (%s %s) attempt %s failed: %s", inbox_id, event.source, event.kind, attempts,
                        why)
        raise
    if not handlers:
        log.info("inbox %s: no flow handles %s %s", inbox_id, event.source, event.kind)
    inbox.finish(inbox_id, "done")
    return "done"


@jobs.job(context=True)
def process_inbox(inbox_id: int, task: Any = None) -> str:
    """The job the receiver queues for every new inbox row."""
    try:
        return run(int(inbox_id), retries_left=task.retries if task is not None else None)
    except Exception as exc:
        wait = getattr(exc, "retry_after", None) or 0
        long_pause = task is not None and wait > jobs.RETRY_DELAY and not inbox.is_permanent(exc)
        if long_pause and _status(inbox_id) == "failed":
            # A vendor asked for a long pause (HappyFox locks a client out for 10 minutes after a 429): wait that
            # long, rather than spend every retry inside the lock-out. It costs no retry of the job's budget.
            raise RetryTask(delay=wait) from exc
        if task is not None and isinstance(exc, effects.InFlight) and _status(inbox_id) == "failed":
            # Another job is making the same write this moment (intake and HappyFox's echo of its ticket route one
            # complaint): expected, so a one-line retry rather than a traceback. The row's attempts still bound it.
            raise RetryTask(delay=jobs.RETRY_DELAY) from exc
        raise


def _status(inbox_id: int) -> str | None:
    with store.session() as s:
        row = s.get(InboxEvent, int(inbox_id))
        return row.status if row is not None else None


def requeue(inbox_ids: list[int]) -> list[int]:
    """Queue the job again for each row still left behind; the ids queued. A row left `running` by a dead worker
    is released first. Each row is taken with a conditional UPDATE that moves its `updated_at` on, so that a
    sweep running in another process at the same moment does not queue it too, and a row a worker claimed
    since `stale()` found it is left to that worker."""
    if not inbox_ids:
        return []
    now = datetime.now(timezone.utc)
    with store.session() as s:
        lost = s.scalars(update(InboxEvent).where(InboxEvent.id.in_(inbox_ids),
                                                  InboxEvent.status == inbox.RUNNING,
                                                  InboxEvent.updated_at < now - inbox.STALE_RUNNING)
                         .values(status="failed", last_error="WorkerLost", updated_at=now)
                         .returning(InboxEvent.id)).all()
        waiting = s.scalars(update(InboxEvent).where(InboxEvent.id.in_(inbox_ids),
                                                     InboxEvent.status.in_(("pending", "failed")),
                                                     InboxEvent.updated_at < now - inbox.ORPHANED)
                            .values(updated_at=now).returning(InboxEvent.id)).all()
    taken = sorted({*lost, *waiting})
    for inbox_id in taken:
        process_inbox(inbox_id)
    return taken


@jobs.recovery
def recover_inbox() -> int:
    """Re-enqueue inbox rows a crash or a lost queue left behind; how many."""
    ids = requeue(inbox.stale())
    if ids:
        log.info("inbox sweep re-enqueued %s rows", len(ids))
    return len(ids)


@jobs.periodic(crontab(minute="*"))
def sweep_inbox() -> int:
    """The clock's sweep, for a deployment whose workers are all busy or gone: the same as the workers' own."""
    return recover_inbox()


@jobs.job
def dispatch_inbox(inbox_ids: list[int]) -> int:
    """The receiver queues one job per batch of stored events (core/ingest.py); here each gets its own job, with
    its own retries and dead state."""
    for inbox_id in inbox_ids:
        process_inbox(int(inbox_id))
    return len(inbox_ids)
