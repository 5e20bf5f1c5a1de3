"""The store contract, run on SQLite and on PostgreSQL (the `database_url` fixture)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from core import store
from core.models import Customer, Identity, InboxEvent, Ticket


@pytest.fixture
def db(database_url):
    store.upgrade(database_url)
    yield database_url
    store.dispose()


def test_upgrade_creates_every_table_and_is_repeatable(db):
    store.upgrade(db)  # a second release on the same database changes nothing
    tables = set(inspect(store.engine(db)).get_table_names())
    assert {"customers", "identities", "tickets", "inbox", "effects", "erasures", "erasure_steps", "audit",
            "alembic_version"} <= tables
    store.ping(db)


def test_sqlite_runs_in_wal_mode(sqlite_url):
    store.upgrade(sqlite_url)
    try:
        with store.engine(sqlite_url).connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        store.dispose()


def test_put_inbox_stores_once(db):
    with store.session(db) as s:
        row, new = store.put_inbox(s, "form", "msg_1", "form.submitted", {"a": 1})
        assert new and row.id is not None
    with store.session(db) as s:
        again, new = store.put_inbox(s, "form", "msg_1", "form.submitted", {"a": 2})
        assert not new and again.id == row.id and again.payload == {"a": 1}
        other, new = store.put_inbox(s, "aircall", "msg_1", "call.ended", {})  # same key, other source
        assert new and other.id != row.id
    with store.session(db) as s:
        assert s.scalar(select(InboxEvent.status).where(InboxEvent.id == row.id)) == "pending"
        assert len(s.scalars(select(InboxEvent)).all()) == 2


def test_put_inbox_two_threads_racing_on_one_key_store_one_row(db):
    barrier = threading.Barrier(2)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            with store.session(db) as s:
                barrier.wait(timeout=5)  # both sessions open before either inserts
                row, new = store.put_inbox(s, "hubspot", "evt-race", "ticket.changed", {"n": 1})
                s.flush()
                results.append((row.id, new))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    for _ in range(5):  # a few rounds so that the interleaving varies
        with store.session(db) as s:
            s.execute(InboxEvent.__table__.delete())
        results.clear()
        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors, errors
        assert sorted(new for _, new in results) == [False, True]
        assert len({row_id for row_id, _ in results}) == 1
        with store.session(db) as s:
            assert len(s.scalars(select(InboxEvent)).all()) == 1


def test_effects_record_and_find(db):
    with store.session(db) as s:
        assert store.find_effect(s, "hubspot:contact:inbox:1") is None
        store.record_effect(s, "hubspot:contact:inbox:1", "901", {"created": True})
    with store.session(db) as s:
        first = store.find_effect(s, "hubspot:contact:inbox:1")
        assert first is not None and first.remote_id == "901" and first.detail == {"created": True}
        assert first.created_at.tzinfo is not None
        kept = store.record_effect(s, "hubspot:contact:inbox:1", "902")  # a retry keeps the first result
        assert kept.remote_id == "901"
    with store.session(db) as s:
        assert store.find_effect(s, "hubspot:contact:inbox:1").remote_id == "901"


def test_identity_is_unique_per_system_and_value(db):
    with store.session(db) as s:
        anna, bela = Customer(first_name="Anna"), Customer(first_name="Béla")
        s.add_all([anna, bela])
        s.flush()
        s.add(Identity(customer_id=anna.id, system="email", value="anna@example.com"))
        s.add(Identity(customer_id=anna.id, system="phone", value="anna@example.com"))  # other system: fine
        ids = anna.id, bela.id
    with pytest.raises(IntegrityError):
        with store.session(db) as s:
            s.add(Identity(customer_id=ids[1], system="email", value="anna@example.com"))
    with store.session(db) as s:
        assert len(s.scalars(select(Identity)).all()) == 2


def test_utc_datetimes_round_trip_aware(db):
    budapest = timezone(timedelta(hours=1))
    opened = datetime(2026, 11, 24, 10, 30, 15, 123000, tzinfo=budapest)
    with store.session(db) as s:
        s.add(Ticket(source_key="inbox:1", channel="form", opened_at=opened))
    with store.session(db) as s:
        ticket = s.scalars(select(Ticket).where(Ticket.source_key == "inbox:1")).one()
        assert ticket.opened_at == opened
        assert ticket.opened_at.utcoffset() == timedelta(0)
        assert ticket.opened_at.hour == 9  # stored and returned as UTC
        assert ticket.updated_at.tzinfo is not None  # defaults are aware too
        # comparisons in SQL use UTC as well
        later = s.scalars(select(Ticket).where(Ticket.opened_at > datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)))
        assert later.all() == [ticket]


def test_naive_datetimes_are_rejected(db):
    with pytest.raises(StatementError, match="naive datetime"):
        with store.session(db) as s:
            s.add(Ticket(source_key="inbox:2", channel="form", opened_at=datetime(2026, 11, 24, 10, 30)))
            s.flush()
