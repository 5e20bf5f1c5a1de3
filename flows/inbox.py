"""The inbox: every stored inbound event as a row whose status stays honest, and what a handler gets of it.

- A row is claimed with one conditional UPDATE (status `running`), so a sweep or a second delivery of the job
  never runs one event twice at the same time. The claim is a lease (flows/leases.py): renewed every few seconds
  while its worker lives, so a claim not renewed for `leases.STALE` (30 s) was left by a dead process.
- Success: `done`. A transient failure (a vendor's 429/5xx/timeout, a crash of ours): `failed` with the
  attempt count and a reason that holds no personal data. A permanent failure (a vendor's 4xx, a bad template,
  a payload the handler cannot read), or the last retry: `dead`. `switchboard inbox replay` gives a dead row a
  new life.
- `stale()` finds the rows a lost queue or a killed worker left behind.

The job that runs a row's handlers, retries and sweeps is flows/dispatch.py; which handlers run for an event, and
in what order, is flows/routes.py's table. Each handler must be idempotent, and reads the payload through
`flows.payloads.read`, which raises Permanent for a payload it cannot use.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, or_, select, update

from core import jobs, store
from core.models import InboxEvent

from . import leases

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
    from connectors.errors import BadAnswer, VendorError
    if isinstance(exc, BadAnswer):
        return f"BadAnswer: {exc}"  # field paths and error types only (connectors/records.py)
    if isinstance(exc, VendorError):
        status = f" HTTP {exc.status}" if exc.status else ""
        return f"{type(exc).__name__}: {exc.vendor}{status}"
    if isinstance(exc, Permanent):
        return f"Permanent: {exc}"  # our own words, written without personal data
    return type(exc).__name__


def _now() -> datetime:
    return datetime.now(timezone.utc)


def claim(inbox_id: int) -> Event | None:
    """Take the row for this attempt, or None when it is done, dead, missing or being run elsewhere."""
    with store.session() as s:
        claimed = s.execute(update(InboxEvent)
                            .where(InboxEvent.id == inbox_id, InboxEvent.status.in_(("pending", "failed")))
                            .values(status=RUNNING, attempts=InboxEvent.attempts + 1, updated_at=_now()))
        if store.rowcount(claimed) != 1:
            return None
        row = s.get(InboxEvent, inbox_id)
        assert row is not None
        s.refresh(row)
        return Event(id=row.id, source=row.source, kind=row.kind, event_key=row.event_key,
                     payload=dict(row.payload or {}), received_at=row.received_at,
                     retry=row.attempts > 1 or row.last_error is not None)


def finish(inbox_id: int, status: str, error: str | None = None) -> int:
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


def replay(inbox_ids: list[int] | None = None, all_dead: bool = False) -> list[int]:
    """Give dead (or failed) rows a new life: pending again with a fresh attempt count; their ids. The last
    error stays until an attempt succeeds, so the replay searches before it creates."""
    with store.session() as s:
        query = select(InboxEvent.id)
        if all_dead:
            query = query.where(InboxEvent.status == "dead")
        else:
            query = query.where(InboxEvent.id.in_(inbox_ids or []),
                                InboxEvent.status.in_(("dead", "failed", "pending", "held")))
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


