"""Group commit for the inbox: the receiver's durable write, shared by every request in flight.

A webhook must be stored before it is acknowledged, and a durable commit costs an fsync (SQLite in WAL mode with
synchronous=FULL, or a PostgreSQL commit). One commit per request, each through the ORM, capped the receiver at a
few hundred events a second and, with SQLite's busy-wait back-off between writers, gave it a 350 ms p99. Instead
a request queues its events and takes the leader lock; the holder inserts every event queued so far with one
transaction and wakes their requests, which answer only then: each event is durable before its 202, and the
commit is shared by all who waited for it (leader/follower group commit, no extra thread on the request path).

The new ids go to a small thread that queues one `dispatch_inbox(ids)` job per 50 ms, fanned out into one
`process_inbox(id)` job per row by a worker, so the job queue's own commit is shared too. Queueing happens after
the answer: if the process dies in between, the inbox sweep re-enqueues the pending rows (flows/inbox.py).
"""
from __future__ import annotations

import collections
import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql

from core import jobs, settings, store
from core.models import InboxEvent

log = logging.getLogger(__name__)

MAX_BATCH = 500
QUEUE_EVERY_SECONDS = 0.05
WAIT_SECONDS = 30.0  # an answer later than this is worse than a 503 the sender retries


@dataclass
class Pending:
    source: str
    key: str
    kind: str
    payload: dict[str, Any]
    result: tuple[int, bool] | None = None  # (inbox id, created), set by the leader that wrote it
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


class Writer:
    """One per process and database, made on first use (after a fork, in the child)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.inbox: collections.deque[Pending] = collections.deque()  # appends and pops are thread-safe
        self.leader = threading.Lock()  # whoever holds it writes everything waiting, for everyone
        self.stored: queue.Queue[list[int]] = queue.Queue()  # ids to queue jobs for, off the request path
        threading.Thread(target=self._run_queue, name="inbox-queuer", daemon=True).start()

    def store(self, source: str, events: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[int, bool]]:
        """Store (key, kind, payload) events durably; (inbox id, created) for each, once committed.

        Leader/follower group commit: each request queues its events and takes the leader lock; the holder writes
        every event queued so far in one transaction. A request whose events a previous leader already wrote
        finds them done when it gets the lock and leaves at once, so a commit serves all who waited for it."""
        pending = [Pending(source, key, kind, payload) for key, kind, payload in events]
        self.inbox.extend(pending)
        if not self.leader.acquire(timeout=WAIT_SECONDS):
            raise TimeoutError("inbox write lock not acquired")
        try:
            while not all(item.done for item in pending):  # more than MAX_BATCH may be waiting
                self._write_waiting()
        finally:
            self.leader.release()
        for item in pending:  # read under no lock: a leader set them before releasing the one we then took
            if item.error is not None:
                raise item.error
        return [item.result for item in pending if item.result is not None]

    def _write_waiting(self) -> None:
        batch: list[Pending] = []
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self.inbox.popleft())
            except IndexError:
                break
        if not batch:
            return
        try:
            results = self._write(batch)
        except Exception as exc:  # the database is down: every waiting request answers 5xx, the sender retries
            log.error("inbox write of %s events failed: %s", len(batch), type(exc).__name__)
            for item in batch:
                item.error = exc
            return
        for item, result in zip(batch, results):
            item.result = result
        self.stored.put([inbox_id for inbox_id, created in results if created])

    def _run_queue(self) -> None:
        while True:
            ids = self.stored.get()
            time.sleep(QUEUE_EVERY_SECONDS)  # one job for everything stored meanwhile: the queue's commit is shared
            while True:  # whatever else was stored meanwhile goes in the same job
                try:
                    ids += self.stored.get_nowait()
                except queue.Empty:
                    break
            self._queue(ids)

    def _write(self, batch: list[Pending]) -> list[tuple[int, bool]]:
        # One row per (source, key): a repeat inside one batch is the same event.
        rows = {(p.source, p.key): p for p in batch}
        engine = store.engine(self.url)
        if engine.dialect.name == "sqlite":
            created, existing = _write_sqlite(engine, rows)
        else:
            created, existing = _write_core(engine, rows)
        results, first = [], set()
        for p in batch:
            k = (p.source, p.key)
            if k in created and k not in first:
                first.add(k)
                results.append((created[k], True))
            else:
                results.append((created.get(k) or existing[k], False))
        return results

    @staticmethod
    def _queue(ids: list[int]) -> None:
        if not ids:
            return
        try:
            jobs.enqueue("dispatch_inbox", ids)
        except Exception as exc:  # stored is what we promised; the sweep queues them when the queue is back
            log.error("could not queue inbox %s..%s (%s); the sweep will", ids[0], ids[-1], type(exc).__name__)


Key = tuple[str, str]
# The columns as SQLAlchemy stores them on SQLite (core/models.py: naive UTC text, JSON text), so that the ORM
# reads these rows like its own.
SQLITE_INSERT = ("INSERT INTO inbox (source, event_key, kind, payload, received_at, updated_at, status, attempts) "
                 "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0) ON CONFLICT (source, event_key) DO NOTHING RETURNING id")
SQLITE_SELECT = "SELECT id FROM inbox WHERE source = ? AND event_key = ?"


def _write_sqlite(engine: Any, rows: dict[Key, Pending]) -> tuple[dict[Key, int], dict[Key, int]]:
    """The embedded default's hot path on the DB-API connection: SQLAlchemy's per-statement work would cost more
    CPU than SQLite's insert, and every webhook pays it."""
    stamp = datetime.now(timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    created: dict[Key, int] = {}
    existing: dict[Key, int] = {}
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            for k, p in rows.items():
                made = cursor.execute(SQLITE_INSERT, (p.source, p.key, p.kind, json.dumps(p.payload), stamp,
                                                      stamp)).fetchone()
                if made is not None:
                    created[k] = made[0]
                else:
                    existing[k] = cursor.execute(SQLITE_SELECT, k).fetchone()[0]
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()
    finally:
        conn.close()
    return created, existing


def _write_core(engine: Any, rows: dict[Key, Pending]) -> tuple[dict[Key, int], dict[Key, int]]:
    """Any other database (PostgreSQL) through SQLAlchemy Core: one executemany with RETURNING."""
    values = [{"source": p.source, "event_key": p.key, "kind": p.kind, "payload": p.payload} for p in rows.values()]
    with engine.begin() as conn:
        made = conn.execute(postgresql.insert(InboxEvent).on_conflict_do_nothing(
            index_elements=["source", "event_key"]).returning(
            InboxEvent.id, InboxEvent.source, InboxEvent.event_key), values).all()
        created = {(source, key): inbox_id for inbox_id, source, key in made}
        missing = [k for k in rows if k not in created]
        existing = {}
        if missing:
            existing = {(source, key): inbox_id for inbox_id, source, key in conn.execute(
                select(InboxEvent.id, InboxEvent.source, InboxEvent.event_key).where(
                    tuple_(InboxEvent.source, InboxEvent.event_key).in_(missing)))}
    return created, existing


_writers: dict[tuple[int, str], Writer] = {}
_lock = threading.Lock()


def writer(url: str | None = None) -> Writer:
    url = url or settings.get().env.database_url
    key = (os.getpid(), url)
    with _lock:
        if key not in _writers:
            _writers[key] = Writer(url)
        return _writers[key]


def store_events(source: str, events: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[int, bool]]:
    """Store inbound events durably (group commit) and queue the new ones; (inbox id, created) for each."""
    if not events:
        return []
    return writer().store(source, events)
