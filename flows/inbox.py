"""The inbox job: every stored inbound event runs through `process_inbox(inbox_id)`, which hands it to the flow
registered for its (source, kind) and keeps the row's status honest.

- A row is claimed with one conditional UPDATE (status `running`), so a sweep or a second delivery of the job
  never runs one event twice at the same time.
- Success: `done`. A transient failure (a vendor's 429/5xx/timeout, a crash of ours): `failed` with the
  attempt count and a reason that holds no personal data, and the exception goes back to huey, which retries
  with backoff. A permanent failure (a vendor's 4xx, a bad template, a payload the handler cannot read), or the
  last of huey's retries: `dead`.
  `switchboard inbox replay` gives a dead row a new life.
- A periodic sweep re-enqueues rows that a lost queue or a killed worker left behind.

Flows add themselves to HANDLERS with one line: `inbox.on("aircall", "call.ended")(calls.on_call_ended)`. A key
may carry several handlers (intake and closure both read HappyFox ticket events); each must be idempotent, and
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

from . import effects

log = logging.getLogger(__name__)

RUNNING = "running"
STALE_PENDING = timedelta(minutes=3)     # queued but never picked up: the queue lost it, or enqueueing failed
STALE_RUNNING = timedelta(minutes=15)    # claimed by a worker that died mid-job
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
HANDLERS: dict[tuple[str, str], tuple[Handler, ...]] = {}


def on(source: str, kind: str) -> Callable[[Handler], Handler]:
    """Register a handler for events of `source` and `kind` (decorator, or `on(s, k)(fn)`)."""
    def register(handler: Handler) -> Handler:
        current = HANDLERS.get((source, kind), ())
        if handler not in current:
            HANDLERS[(source, kind)] = (*current, handler)
        return handler
    return register


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
    import flows.tasks  # noqa: F401 - every handler registered, however this process was started
    event = _claim(inbox_id)
    if event is None:
        log.info("inbox %s: not claimable (done, dead or running elsewhere)", inbox_id)
        return "skipped"
    handlers = HANDLERS.get((event.source, event.kind), ())
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


def stale(now: datetime | None = None) -> list[int]:
    """Rows that no queued job will pick up any more."""
    now = now or _now()
    with store.session() as s:
        return list(s.scalars(select(InboxEvent.id).where(or_(
            and_(InboxEvent.status == "pending", InboxEvent.updated_at < now - STALE_PENDING),
            and_(InboxEvent.status == RUNNING, InboxEvent.updated_at < now - STALE_RUNNING),
            and_(InboxEvent.status == "failed", InboxEvent.updated_at < now - STALE_FAILED),
        )).order_by(InboxEvent.id).limit(500)))


def requeue(inbox_ids: list[int]) -> None:
    """Queue the job again for each row; a row left `running` by a dead worker is released first."""
    if not inbox_ids:
        return
    with store.session() as s:
        # Only a claim older than STALE_RUNNING: a worker may have claimed the row since `stale()` found it.
        s.execute(update(InboxEvent).where(InboxEvent.id.in_(inbox_ids), InboxEvent.status == RUNNING,
                                           InboxEvent.updated_at < _now() - STALE_RUNNING)
                  .values(status="failed", last_error="WorkerLost", updated_at=_now()))
    for inbox_id in inbox_ids:
        process_inbox(inbox_id)


@jobs.periodic(crontab(minute="*"))
def sweep_inbox() -> int:
    """Re-enqueue inbox rows a crash or a lost queue left behind."""
    ids = stale()
    requeue(ids)
    if ids:
        log.info("inbox sweep re-enqueued %s rows", len(ids))
    return len(ids)


@jobs.job
def dispatch_inbox(inbox_ids: list[int]) -> int:
    """The receiver queues one job per batch of stored events (core/ingest.py); here each gets its own job, with
    its own retries and dead state."""
    for inbox_id in inbox_ids:
        process_inbox(int(inbox_id))
    return len(inbox_ids)
