"""The database: engine, sessions, migrations and the few repository operations every flow shares.

One URL selects the engine: SQLite (WAL mode, the embedded default) or PostgreSQL (`DATABASE_URL` on a PaaS).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import CursorResult, Engine, Result, create_engine, event, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core import settings
from core.models import Effect, InboxEvent

MIGRATIONS = settings.ROOT / "migrations"


_engines: dict[str, Engine] = {}
_sessionmakers: dict[str, sessionmaker[Session]] = {}


def engine(url: str | None = None) -> Engine:
    """The process's engine for `url` (default: DATABASE_URL), created once."""
    url = url or settings.get().env.database_url
    if url not in _engines:
        _engines[url] = _create_engine(url)
    return _engines[url]


def dispose() -> None:
    """Close every pooled connection and forget the engines (tests, and a process about to fork)."""
    for eng in _engines.values():
        eng.dispose()
    _engines.clear()
    _sessionmakers.clear()


def _sqlite_directory(url: str) -> None:
    """SQLite creates the file but not its directory; a fresh checkout or data volume has neither."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _sqlite_directory(url)
        eng = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(eng, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            # WAL lets the web process read while the worker writes; foreign keys are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # The driver's own BEGIN is deferred: a transaction that reads and then writes cannot wait for a
            # concurrent writer and fails at once with "database is locked". We begin every transaction ourselves.
            dbapi_conn.isolation_level = None

        @event.listens_for(eng, "begin")
        def _begin_immediate(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front, so a second writer waits (busy_timeout) instead of failing;
            # readers are not blocked in WAL mode. (SQLAlchemy's documented pysqlite recipe.)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        return eng
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"connect_timeout": 3})


def _sessions(url: str) -> sessionmaker[Session]:
    if url not in _sessionmakers:
        _sessionmakers[url] = sessionmaker(engine(url), expire_on_commit=False)
    return _sessionmakers[url]


@contextlib.contextmanager
def session(url: str | None = None) -> Iterator[Session]:
    """A unit of work: committed when the block ends, rolled back when it raises. What `after_commit` was given
    runs once the commit is done."""
    with _sessions(url or settings.get().env.database_url).begin() as s:
        yield s
    for callback in s.info.pop(AFTER_COMMIT, ()):
        callback()


AFTER_COMMIT = "switchboard_after_commit"


def after_commit(s: Session, callback: Callable[[], None]) -> None:
    """Run `callback` when the unit of work `s` (from `session()`) has committed, and never if it rolls back: to
    queue a job that must see what the transaction wrote. The callback handles its own errors."""
    s.info.setdefault(AFTER_COMMIT, []).append(callback)


def ping(url: str | None = None) -> None:
    with engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))


def alembic_config(url: str | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", (url or settings.get().env.database_url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    url = url or settings.get().env.database_url
    if url.startswith("sqlite"):
        ping(url)  # through our engine first: creates the directory and puts the new file in WAL mode
    command.upgrade(alembic_config(url), revision)


# ---------------------------------------------------------------- shared repository operations

def put_inbox(s: Session, source: str, event_key: str, kind: str, payload: dict[str, Any]) -> tuple[InboxEvent, bool]:
    """Store an inbound event once. Returns (row, True) when new, (existing row, False) for a repeat."""
    existing = s.scalar(select(InboxEvent).where(InboxEvent.source == source, InboxEvent.event_key == event_key))
    if existing is not None:
        return existing, False
    row = InboxEvent(source=source, event_key=event_key, kind=kind, payload=payload)
    try:
        with s.begin_nested():
            s.add(row)
    except IntegrityError:  # a concurrent delivery of the same event won the race
        return s.scalars(select(InboxEvent).where(InboxEvent.source == source,
                                                  InboxEvent.event_key == event_key)).one(), False
    return row, True


def find_effect(s: Session, key: str) -> Effect | None:
    return s.get(Effect, key)


def record_effect(s: Session, key: str, remote_id: str | None, detail: dict[str, Any] | None = None) -> Effect:
    """Remember that the write `key` happened and what it produced. Committed at once by the caller's unit of
    work; a second record of the same key keeps the first."""
    existing = s.get(Effect, key)
    if existing is not None:
        return existing
    effect = Effect(key=key, remote_id=remote_id, detail=detail)
    s.add(effect)
    s.flush()
    return effect


@contextlib.contextmanager
def claimed_once(model: Any, row_id: int, column: Any, now: Any) -> Iterator[bool]:
    """Stamp `column` of one row with `now` if it is still empty, by one conditional UPDATE, so that of two
    processes about to do the same work (two clocks sending one alert) exactly one goes on: yields whether this one
    did. Should the work in the block fail, the stamp is cleared, and a later run tries again."""
    with session() as s:
        mine = rowcount(s.execute(update(model).where(model.id == row_id, column.is_(None))
                                  .values({column.key: now}))) == 1
    try:
        yield mine
    except BaseException:
        if mine:
            with session() as s:
                s.execute(update(model).where(model.id == row_id).values({column.key: None}))
        raise


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched: `Session.execute` is typed as a plain Result, though for those
    statements it is a CursorResult."""
    return cast(CursorResult[Any], result).rowcount
