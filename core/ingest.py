"""Group commit for the inbox: the receiver's durable write, shared by every request in flight.

A webhook must be stored before it is acknowledged, and a durable commit costs an fsync (SQLite in WAL mode with
synchronous=FULL, or a PostgreSQL commit). One commit per request, each through the ORM, capped the receiver at a
few hundred events a second and, with SQLite's busy-wait back-off between writers, gave it a 350 ms p99. Instead
a request queues its events; if nobody is writing it becomes the leader, inserts every event queued so far with
one transaction and wakes their requests, which answer only then: each event is durable before its 202, and the
commit is shared by all who waited for it (leader/follower group commit, no extra thread on the request path).

Several processes may write one SQLite file (gunicorn's workers under `switchboard serve`). SQLite lets one
write at a time and makes the others poll in its busy handler, which sleeps 1, 2, 5, 10 ms... between tries, so
two group commits took turns at a poll's pace. Their leaders queue on an flock of a file beside the database
instead: the kernel wakes the next one the moment the lock is free.

SQLite copies its WAL back into the database file (a checkpoint) inside whichever commit finds the WAL over 1000
pages: under load, several times a second one batch's fsync became a checkpoint of megabytes, and every request
queued behind it waited (the bench's p99 ratio went from 1.49x to 1.42x without it, docs/benchmarks.md). The
inbox's connection leaves checkpoints to a thread of the writer, which runs a PASSIVE one (it waits for nobody)
every CHECKPOINT_EVERY seconds while there are writes; other connections keep SQLite's automatic ones.

The web process serves with gevent (switchboard/runtime.py), where every request of a process runs on one thread
as a greenlet and a waiting request costs a switch, not a thread's sleep and wake-up. A call that blocks that
thread (the flock, SQLite's insert and fsync, a checkpoint) would stop every request of the process, so those run
on a thread of gevent's pool (off_the_loop) while the others go on; PostgreSQL's driver waits on gevent's loop by
itself. Under real threads (the embedded server, the tests) the same code runs inline.

The new ids go to a small thread that queues one `dispatch_inbox(ids)` job per 50 ms, fanned out into one
`process_inbox(id)` job per row by a worker, so the job queue's own commit is shared too. Queueing happens after
the answer: if the process dies in between, the inbox sweep re-enqueues the pending rows (flows/dispatch.py).
"""
from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import orjson
from gevent import get_hub, idle, monkey
from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from core import jobs, settings, store
from core.models import InboxEvent

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH = 500
CHECKPOINT_EVERY = 0.5  # seconds between the inbox's WAL checkpoints on SQLite, while it is written
QUEUE_EVERY_SECONDS = 0.05
WAIT_SECONDS = 30.0  # an answer later than this is worse than a 503 the sender retries


class Overloaded(TimeoutError):
    """The inbox write was not done within WAIT_SECONDS: the request answers 503 and the sender retries."""


@dataclass
class Pending:
    source: str
    key: str
    kind: str
    payload: dict[str, Any]
    result: tuple[int, bool] | None = None  # (inbox id, created), set by the leader that wrote it
    error: BaseException | None = None


def _taken_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class Waiter:
    """One request's events, and what its thread sleeps on until a leader has written them or made it the leader:
    a lock taken at birth that the leader releases (a one-shot signal, cheaper than a threading.Event)."""
    items: list[Pending]
    asleep: threading.Lock = field(default_factory=_taken_lock)
    lead: bool = False      # this request writes the next batch
    gave_up: bool = False   # waited WAIT_SECONDS and answered 503: never made leader (still written)

    def wake(self) -> None:
        if self.asleep.locked():  # woken once (written, or made leader); never raise in the leader
            self.asleep.release()

    @property
    def done(self) -> bool:
        return all(item.result is not None or item.error is not None for item in self.items)


class Writer:
    """One per process and database, made on first use (after a fork, in the child)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.mutex = threading.Lock()  # guards `waiting` and `leading`; held only to push, pop or pick a leader
        self.waiting: collections.deque[Waiter] = collections.deque()
        self.leading = False  # a request is writing: the others sleep until it wakes them
        self.connection: tuple[Any, Any] | None = None  # (engine, the connection it keeps), leader only
        self.lock_file: int | None = None  # the flock file of an SQLite database (Writer._turn)
        self.stored: queue.Queue[list[int]] = queue.Queue()  # ids to queue jobs for, off the request path
        self.unchecked = threading.Event()  # SQLite: written since the last checkpoint
        self.checkpointer: threading.Thread | None = None
        threading.Thread(target=self._run_queue, name="inbox-queuer", daemon=True).start()

    def store(self, source: str, events: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[int, bool]]:
        """Store (key, kind, payload) events durably; (inbox id, created) for each, once committed.

        Leader/follower group commit: with nobody writing, the request leads: it writes everything waiting in one
        transaction, wakes the requests it wrote for, and hands the lead to the oldest request still waiting.
        Otherwise it sleeps until woken. Each wake-up is one lock release, so the requests a commit served
        answer in parallel instead of passing one lock from hand to hand."""
        waiter = Waiter([Pending(source, key, kind, payload) for key, kind, payload in events])
        with self.mutex:
            self.waiting.append(waiter)
            waiter.lead = not self.leading
            self.leading = True
        if not waiter.lead and not waiter.asleep.acquire(timeout=WAIT_SECONDS):
            with self.mutex:  # made leader just now: it must lead, or nobody would
                waiter.gave_up = not waiter.lead
            if waiter.gave_up:
                raise Overloaded("inbox write not done in time")
        if waiter.lead:
            self._lead(waiter)
        for item in waiter.items:  # set before the release that woke us (or by this thread)
            if item.error is not None:
                raise item.error
        return [item.result for item in waiter.items if item.result is not None]

    def _lead(self, waiter: Waiter) -> None:
        try:
            while not waiter.done:  # requests that gave up may be queued ahead of ours
                gather()
                batch: list[Waiter] = []
                with self.mutex:
                    size = 0
                    while self.waiting and size < MAX_BATCH:
                        batch.append(self.waiting.popleft())
                        size += len(batch[-1].items)
                self._write_waiting([item for t in batch for item in t.items])
                for other in batch:
                    if other is not waiter:
                        other.wake()
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        with self.mutex:
            successor = next((t for t in self.waiting if not t.gave_up), None)
            self.leading = successor is not None
            if successor is not None:
                successor.lead = True
                successor.wake()

    def _write_waiting(self, batch: list[Pending]) -> None:
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
            batches = [self.stored.get()]
            time.sleep(QUEUE_EVERY_SECONDS)  # one job for everything stored meanwhile: the queue's commit is shared
            while True:  # whatever else was stored meanwhile goes in the same job
                try:
                    batches.append(self.stored.get_nowait())
                except queue.Empty:
                    break
            try:
                self._queue([inbox_id for batch in batches for inbox_id in batch])
            finally:
                for _ in batches:
                    self.stored.task_done()

    def queued(self) -> None:
        """Return once the jobs of every event stored so far are queued (they are queued off the request path)."""
        self.stored.join()

    def _write(self, batch: list[Pending]) -> list[tuple[int, bool]]:
        # One row per (source, key): a repeat inside one batch is the same event.
        rows = {(p.source, p.key): p for p in batch}
        engine = store.engine(self.url)
        try:
            try:
                created, existing = self._insert(engine, rows)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                # The kept connection died (a database restart, an idle timeout): once more on a new one. Rows the
                # first try committed come back as repeats, and the inbox sweep queues their jobs.
                self._close()
                created, existing = self._insert(engine, rows)
        except BaseException:
            self._close()
            raise
        results, first = [], set()
        for p in batch:
            k = (p.source, p.key)
            if k in created and k not in first:
                first.add(k)
                results.append((created[k], True))
            else:
                results.append((created.get(k) or existing[k], False))
        return results

    def _insert(self, engine: Any, rows: dict[Key, Pending]) -> tuple[dict[Key, int], dict[Key, int]]:
        connection = self._connection(engine)
        if engine.dialect.name != "sqlite":
            return _write_core(connection, rows)
        written: tuple[dict[Key, int], dict[Key, int]] = off_the_loop(
            self._write_in_turn, engine.url.database, connection.driver_connection, rows)  # sqlite3's own connection
        self.unchecked.set()
        return written

    def _write_in_turn(self, database: str | None, conn: Any, rows: dict[Key, Pending]) -> tuple[
            dict[Key, int], dict[Key, int]]:
        with self._turn(database):
            return _write_sqlite(conn, rows)

    def _connection(self, engine: Any) -> Any:
        """The connection the writer keeps (only the leader uses it): a pool check-out, ping and check-in per batch
        cost the waiting requests more than the insert. On SQLite the DB-API connection (in autocommit, core/store.py);
        elsewhere a Core connection in AUTOCOMMIT, so that a batch is one statement and one round trip. A new
        engine (store.dispose) or a failed write gets a new connection."""
        if self.connection is None or self.connection[0] is not engine:
            self._close()
            if engine.dialect.name == "sqlite":
                self.connection = (engine, engine.raw_connection())
                self.connection[1].driver_connection.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's
                if self.checkpointer is None:
                    self.checkpointer = threading.Thread(target=self._run_checkpoints, args=(engine.url.database,),
                                                         name="inbox-checkpointer", daemon=True)
                    self.checkpointer.start()
            else:
                self.connection = (engine, engine.connect().execution_options(isolation_level="AUTOCOMMIT"))
        return self.connection[1]

    def _run_checkpoints(self, database: str) -> None:
        while True:
            self.unchecked.wait()
            time.sleep(CHECKPOINT_EVERY)
            self.unchecked.clear()  # before the checkpoint: a write during it is left for the next one
            try:
                off_the_loop(checkpoint, database)
            except Exception as exc:  # a busy or missing file now; the next write brings the next try
                log.warning("inbox checkpoint failed: %s", type(exc).__name__)

    @contextlib.contextmanager
    def _turn(self, database: str | None) -> Iterator[None]:
        """This process's turn to write the SQLite file, among every process writing it (module docstring)."""
        if not database or database == ":memory:":
            yield
            return
        if self.lock_file is None:
            self.lock_file = os.open(f"{database}.inbox-lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.lock_file, fcntl.LOCK_EX)  # blocks without the interpreter lock
        try:
            yield
        finally:
            fcntl.flock(self.lock_file, fcntl.LOCK_UN)

    def _close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):  # a broken connection: it is being dropped anyway
                self.connection[1].close()
            self.connection = None

    @staticmethod
    def _queue(ids: list[int]) -> None:
        if not ids:
            return
        try:
            jobs.enqueue("dispatch_inbox", ids)
        except Exception as exc:  # stored is what we promised; the sweep queues them when the queue is back
            log.error("could not queue inbox %s..%s (%s); the sweep will", ids[0], ids[-1], type(exc).__name__)


def _under_gevent() -> bool:
    """Whether this process serves with gevent (switchboard/launch.py patched threading before anything ran)."""
    return bool(monkey.is_module_patched("threading"))


def gather() -> None:
    """Under gevent, let every request the process has read already join the batch before it is written: wait until
    the event loop has nothing else ready to run (gevent.idle, at once when the process is otherwise idle). A batch
    then holds every webhook in flight, not only those that arrived during the last write: 10-19 events a batch
    instead of 8-10 under the ingest bench's load, and 40 % fewer context switches a request. It waits for
    at most one request per open connection. With real threads there is no loop to wait for."""
    if _under_gevent():
        idle()


def off_the_loop(call: Callable[..., T], *args: Any) -> T:
    """Make a call that blocks in the kernel or in SQLite (flock, an fsync, a checkpoint) block only its caller. Under
    gevent (the web process, switchboard/launch.py) a blocking call on the event loop's thread would stop every
    request of the process, so it runs on a thread of gevent's pool while the loop serves the others; with real
    threads it runs right here. PostgreSQL needs neither: psycopg waits on gevent's loop by itself."""
    if _under_gevent():
        result: T = get_hub().threadpool.apply(call, args)
        return result
    return call(*args)


Key = tuple[str, str]
# The columns as SQLAlchemy stores them on SQLite (core/models.py: naive UTC text, JSON text), so that the ORM
# reads these rows like its own.
SQLITE_INSERT = ("INSERT INTO inbox (source, event_key, kind, payload, received_at, updated_at, status, attempts) "
                 "VALUES {} ON CONFLICT (source, event_key) DO NOTHING RETURNING id, source, event_key")
SQLITE_ROW = "(?, ?, ?, ?, ?, ?, 'pending', 0)"
SQLITE_SELECT = "SELECT id FROM inbox WHERE source = ? AND event_key = ?"


def _write_sqlite(conn: Any, rows: dict[Key, Pending]) -> tuple[dict[Key, int], dict[Key, int]]:
    """The embedded default's hot path on the DB-API connection: SQLAlchemy's per-statement work would cost more
    CPU than SQLite's insert, and every webhook pays it. One multi-row INSERT for the whole batch: the driver lets
    go of the interpreter lock around every statement, and winning it back while the other requests run cost the
    whole batch more than the insert itself."""
    stamp = datetime.now(timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    params = [value for p in rows.values()
              for value in (p.source, p.key, p.kind, _json_text(p.payload), stamp, stamp)]
    existing: dict[Key, int] = {}
    cursor = conn.cursor()
    try:
        # One statement is its own transaction (the connection is in autocommit, core/store.py): committed, WAL
        # fsynced, when its last row is read, so a BEGIN and COMMIT of our own would only add round trips.
        made = cursor.execute(SQLITE_INSERT.format(", ".join([SQLITE_ROW] * len(rows))), params).fetchall()
        created = {(source, key): inbox_id for inbox_id, source, key in made}
        if conn.in_transaction:  # a connection not in autocommit after all: commit, or nothing is stored
            conn.commit()
        for k in rows.keys() - created.keys():  # repeats: stored by an earlier request, and unique by key
            existing[k] = cursor.execute(SQLITE_SELECT, k).fetchone()[0]
    finally:
        cursor.close()
    return created, existing


def _json_text(payload: dict[str, Any]) -> str:
    """The payload as JSON text, which SQLAlchemy's JSON type reads back: orjson's, at a fraction of the json
    module's cost, or the json module's for what orjson refuses (a lone surrogate in a string), so that one odd
    event does not fail the batch it shares."""
    try:
        return orjson.dumps(payload).decode()
    except orjson.JSONEncodeError:
        return json.dumps(payload)


def checkpoint(database: str) -> tuple[int, int, int] | None:
    """A PASSIVE checkpoint of the SQLite file: (busy, frames in the WAL, frames copied back), or None when the file
    is gone. Its own connection, opened read-write only (so a removed database is not created again)."""
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(database)}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.OperationalError:
        return None
    with contextlib.closing(conn):
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return busy, frames, copied


def _write_core(conn: Any, rows: dict[Key, Pending]) -> tuple[dict[Key, int], dict[Key, int]]:
    """Any other database (PostgreSQL) through SQLAlchemy Core: one multi-row INSERT with RETURNING, committed as it
    completes (the connection is in autocommit), then the ids of repeats, which are stored already."""
    values = [{"source": p.source, "event_key": p.key, "kind": p.kind, "payload": p.payload} for p in rows.values()]
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
