"""The inbox job: every stored inbound event runs through `process_inbox(inbox_id)`, which hands it to the flow
registered for its (source, kind) and keeps the row's status honest.

- A row is claimed with one conditional UPDATE (status `running`), so a sweep or a second delivery of the job
  never runs one event twice at the same time. The claim is a lease (flows/leases.py): renewed every few seconds
  while its worker lives, so a claim not renewed for `leases.STALE` (30 s) was left by a dead process.
- Success: `done`. A transient failure (a vendor's 429/5xx/timeout, a crash of ours): `failed` with the
  attempt count and a reason that holds no personal data, and the exception goes back to huey, which retries
  with backoff. A permanent failure (a vendor's 4xx, a bad template, a payload the handler cannot read), or the
  last of huey's retries: `dead`.
  `switchboard inbox replay` gives a dead row a new life.
- A sweep re-enqueues rows that a lost queue or a killed worker left behind: every worker runs it every few
  seconds (`core.jobs.recovery`), and the clock once a minute. Sweeps in several processes at once enqueue each
  row once: a row is taken for requeueing by a conditional UPDATE.

Which handlers run for an event, and in what order, is flows/routes.py's table. Each must be idempotent, and
reads the payload through `flows.payloads.read`, which raises Permanent for a payload it cannot use.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from huey.exceptions import RetryTask
from sqlalchemy import and_, or_, select, update

from core import jobs, store
from core.jobs import crontab
from core.models import InboxEvent

from . import effects, leases

log = logging.getLogger(__name__)

RUNNING = "running"
STALE_RUNNING = leases.STALE             # claimed by a worker that stopped renewing its lease: it died
# While the queue holds nothing at all (no job waiting, no retry scheduled), a row pending or failed for this long
# has no job that will run it: the process that was to queue it died, or the queue lost it (a Redis restart).
ORPHANED = timedelta(seconds=30)
# While the queue is busy, a row may be waiting behind others or for its retry; only this old is it lost.
STALE_PENDING = timedelta(minutes=3)     # queued but never picked up: the queue lost it, or enqueueing failed
STALE_FAILED = timedelta(minutes=15)     # longer than huey's longest retry delay (256 s): the retry was lost


@dataclass(frozen=True)
class Event:
    """What a handler gets: the stored row's fields, detached from the database session."""
    id: int
    source: str
    kind: str
    event_key: str
    payload: dict[str, Any]
    received_at: datetime
    retry: bool  # an earlier attempt may have written already: search before creating


Handler = Callable[[Event], Any]


class Permanent(Exception):
    """A failure that retrying cannot cure: the event goes to the dead state at once."""


def is_permanent(exc: BaseException) -> bool:
    """By what the error means, not where it came from: a vendor's verdict on the request (4xx), our own broken
    setup, or data that can never fit (a number that overflows, a value the database refuses as data) fail the
    same way on every retry. An outage, a timeout, a lock, or a bug of ours that a deploy may fix is retried."""
    if isinstance(exc, Permanent):
        return True
    from connectors.errors import VendorError  # connectors may not import flows; flows may import connectors
    if isinstance(exc, VendorError):
        return not exc.transient
    from sqlalchemy.exc import DataError  # the database refused a value: out of range, too long, not its type
    if isinstance(exc, (OverflowError, DataError)):
        return True
    return type(exc).__name__ in ("MailTemplateError", "MissingSetup")


def reason(exc: BaseException) -> str:
    """Why an attempt failed, without personal data: the error's type, and for a vendor its name and HTTP
    status. Vendor messages and our own may quote an address or a phone number, so they are left out."""
    from connectors.errors import VendorError
    if isinstance(exc, VendorError):
        status = f" HTTP {exc.status}" if exc.status else ""
        return f"{type(exc).__name__}: {exc.vendor}{status}"
    if isinstance(exc, Permanent):
        return f"Permanent: {exc}"  # our own words, written without personal data
    return type(exc).__name__


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _claim(inbox_id: int) -> Event | None:
    """Take the row for this attempt, or None when it is done, dead, missing or being run elsewhere."""
    with store.session() as s:
        claimed = s.execute(update(InboxEvent)
                            .where(InboxEvent.id == inbox_id, InboxEvent.status.in_(("pending", "failed")))
                            .values(status=RUNNING, attempts=InboxEvent.attempts + 1, updated_at=_now()))
        if claimed.rowcount != 1:
            return None
        row = s.get(InboxEvent, inbox_id)
        assert row is not None
        s.refresh(row)
        return Event(id=row.id, source=row.source, kind=row.kind, event_key=row.event_key,
                     payload=dict(row.payload or {}), received_at=row.received_at,
                     retry=row.attempts > 1 or row.last_error is not None)


def _finish(inbox_id: int, status: str, error: str | None = None) -> int:
    with store.session() as s:
        row = s.get(InboxEvent, inbox_id)
        assert row is not None
        row.status = status
        row.updated_at = _now()
        if status == "done":
            row.last_error, row.processed_at = None, _now()
        else:
            row.last_error = error
        return row.attempts


def run(inbox_id: int, retries_left: int | None = None) -> str:
    """Process one inbox row; its status afterwards. `retries_left` is what huey has left for this job (None
    when called directly); the row's attempt count against core.jobs.RETRIES decides too."""
    event = _claim(inbox_id)
    if event is None:
        log.info("inbox %s: not claimable (done, dead or running elsewhere)", inbox_id)
        return "skipped"
    with leases.held(lambda now: _renew(inbox_id, now)):
        return _run_claimed(event, retries_left)


def _renew(inbox_id: int, now: datetime) -> None:
    with store.session() as s:
        s.execute(update(InboxEvent).where(InboxEvent.id == inbox_id, InboxEvent.status == RUNNING)
                  .values(updated_at=now))


def _run_claimed(event: Event, retries_left: int | None) -> str:
    inbox_id = event.id
    from .routes import handlers_for  # the table imports the flows, and they import this module
    handlers = handlers_for(event.source, event.kind)
    try:
        with effects.attempt(retry=event.retry):
            for handler in handlers:
                handler(event)
    except Exception as exc:
        why = reason(exc)
        with store.session() as s:
            attempts = s.get(InboxEvent, inbox_id).attempts  # type: ignore[union-attr]
        # huey's own count when it runs the job; the row's count too, since a sweep's re-enqueue starts afresh.
        exhausted = retries_left == 0 or attempts > jobs.RETRIES
        if is_permanent(exc) or exhausted:
            _finish(inbox_id, "dead", why)
            log.error("inbox %s (%s %s) is dead after %s attempts: %s", inbox_id, event.source, event.kind,
                      attempts, why)
            if is_permanent(exc):
                return "dead"  # no retry can help: huey is not asked for one
        else:
            _finish(inbox_id, "failed", why)
            log.warning("inbox %s (%s %s) attempt %s failed: %s", inbox_id, event.source, event.kind, attempts,
                        why)
        raise
    if not handlers:
        log.info("inbox %s: no flow handles %s %s", inbox_id, event.source, event.kind)
    _finish(inbox_id, "done")
    return "done"


@jobs.job(context=True)
def process_inbox(inbox_id: int, task: Any = None) -> str:
    """The job the receiver queues for every new inbox row."""
    try:
        return run(int(inbox_id), retries_left=task.retries if task is not None else None)
    except Exception as exc:
        wait = getattr(exc, "retry_after", None) or 0
        if task is not None and wait > jobs.RETRY_DELAY and not is_permanent(exc) and _status(inbox_id) == "failed":
            # A vendor asked for a long pause (HappyFox locks a client out for 10 minutes after a 429): wait that
            # long, rather than spend every retry inside the lock-out. It costs no retry of the job's budget.
            raise RetryTask(delay=wait) from exc
        raise


def _status(inbox_id: int) -> str | None:
    with store.session() as s:
        row = s.get(InboxEvent, int(inbox_id))
        return row.status if row is not None else None


def replay(inbox_ids: list[int] | None = None, all_dead: bool = False) -> list[int]:
    """Give dead (or failed) rows a new life: pending again with a fresh attempt count; their ids. The last
    error stays until an attempt succeeds, so the replay searches before it creates."""
    with store.session() as s:
        query = select(InboxEvent.id)
        if all_dead:
            query = query.where(InboxEvent.status == "dead")
        else:
            query = query.where(InboxEvent.id.in_(inbox_ids or []),
                                InboxEvent.status.in_(("dead", "failed", "pending")))
        ids = list(s.scalars(query.order_by(InboxEvent.id)))
        if ids:
            s.execute(update(InboxEvent).where(InboxEvent.id.in_(ids))
                      .values(status="pending", attempts=0, updated_at=_now()))
    return ids


def stale(now: datetime | None = None, queue_idle: bool | None = None) -> list[int]:
    """Rows that no queued job will pick up any more. `queue_idle`: whether the job queue holds nothing (asked
    of the queue when not given)."""
    now = now or _now()
    if queue_idle is None:
        queue_idle = jobs.idle()
    pending, failed = (ORPHANED, ORPHANED) if queue_idle else (STALE_PENDING, STALE_FAILED)
    with store.session() as s:
        return list(s.scalars(select(InboxEvent.id).where(or_(
            and_(InboxEvent.status == "pending", InboxEvent.updated_at < now - pending),
            and_(InboxEvent.status == RUNNING, InboxEvent.updated_at < now - STALE_RUNNING),
            and_(InboxEvent.status == "failed", InboxEvent.updated_at < now - failed),
        )).order_by(InboxEvent.id).limit(500)))


def requeue(inbox_ids: list[int]) -> list[int]:
    """Queue the job again for each row still left behind; the ids queued. A row left `running` by a dead worker
    is released first. Each row is taken with a conditional UPDATE that moves its `updated_at` on, so that a
    sweep running in another process at the same moment does not queue it too, and a row a worker claimed
    since `stale()` found it is left to that worker."""
    if not inbox_ids:
        return []
    now = _now()
    with store.session() as s:
        lost = s.scalars(update(InboxEvent).where(InboxEvent.id.in_(inbox_ids), InboxEvent.status == RUNNING,
                                                  InboxEvent.updated_at < now - STALE_RUNNING)
                         .values(status="failed", last_error="WorkerLost", updated_at=now)
                         .returning(InboxEvent.id)).all()
        waiting = s.scalars(update(InboxEvent).where(InboxEvent.id.in_(inbox_ids),
                                                     InboxEvent.status.in_(("pending", "failed")),
                                                     InboxEvent.updated_at < now - ORPHANED)
                            .values(updated_at=now).returning(InboxEvent.id)).all()
    taken = sorted({*lost, *waiting})
    for inbox_id in taken:
        process_inbox(inbox_id)
    return taken


@jobs.recovery
def recover_inbox() -> int:
    """Re-enqueue inbox rows a crash or a lost queue left behind; how many."""
    ids = requeue(stale())
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
