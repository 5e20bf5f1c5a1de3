"""One pacing contract, every backend: however many threads and processes share a counter, the slots they are
given are at least one interval apart, so a backlog never goes above the vendor's rate.

The tests reserve slots without sleeping until them. An interval of 1000 s makes the check independent of
scheduling noise: each slot is computed as (the caller's clock + the wait it was given), and two slots must be
~1000 s apart, so a few milliseconds of jitter cannot make a wrong answer pass or a right one fail.
"""
from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable

import pytest

from connectors import pacing
from connectors.pacing import MemoryPacer, Pacer, RedisPacer, SqlPacer
from core import store

INTERVAL = 1000.0
TOLERANCE = 1.0  # seconds of clock noise allowed between the caller's clock and the counter's


def reserve_slots(pacer: Pacer, key: str, count: int) -> list[float]:
    slots = []
    for _ in range(count):
        now = time.time()
        slots.append(now + pacer.reserve(key, INTERVAL))
    return slots


def assert_spaced(slots: list[float], expected: int, started: float) -> None:
    assert len(slots) == expected
    ordered = sorted(slots)
    assert ordered[0] == pytest.approx(started, abs=TOLERANCE + 5)  # the first caller does not wait
    gaps = [b - a for a, b in zip(ordered, ordered[1:])]
    assert min(gaps) >= INTERVAL - TOLERANCE, f"two callers got slots {min(gaps):.3f} s apart"
    # And no slot is skipped: the schedule is as dense as the rate allows.
    assert ordered[-1] - ordered[0] == pytest.approx(INTERVAL * (expected - 1), abs=TOLERANCE * expected)


def from_threads(make: Callable[[], Pacer], key: str, threads: int, each: int) -> list[float]:
    pacer = make()  # one pacer per process, shared by its threads, as `pacing.shared` hands out
    results: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            slots = reserve_slots(pacer, key, each)
            with lock:
                results.extend(slots)
        except BaseException as exc:  # surfaced below: an exception in a thread would otherwise vanish
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors, errors
    return results


def _child(kind: str, url: str, key: str, each: int, start: multiprocessing.Event, out: multiprocessing.Queue):
    pacer = SqlPacer(url) if kind == "sql" else RedisPacer(url)
    start.wait(30)
    try:
        out.put(reserve_slots(pacer, key, each))
    except BaseException as exc:
        out.put(repr(exc))


def from_processes(kind: str, url: str, key: str, processes: int, each: int) -> list[float]:
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited engine, no forked threads
    start, out = ctx.Event(), ctx.Queue()
    children = [ctx.Process(target=_child, args=(kind, url, key, each, start, out)) for _ in range(processes)]
    for child in children:
        child.start()
    start.set()
    results: list[float] = []
    for _ in children:
        got = out.get(timeout=60)
        assert isinstance(got, list), got
        results.extend(got)
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    return results


def new_key() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------- memory

def test_memory_pacer_threads_never_share_a_slot():
    started = time.time()
    assert_spaced(from_threads(MemoryPacer, "vendor", threads=6, each=5), 30, started)


def test_memory_pacer_keys_are_independent():
    pacer = MemoryPacer()
    assert pacer.reserve("hubspot", INTERVAL) == pytest.approx(0, abs=0.1)
    assert pacer.reserve("happyfox", INTERVAL) == pytest.approx(0, abs=0.1)
    assert pacer.reserve("hubspot", INTERVAL) == pytest.approx(INTERVAL, abs=TOLERANCE)


def test_an_idle_counter_does_not_bank_a_burst():
    # GCRA with no burst: after a quiet period the next call goes now, and the one after waits a full interval.
    pacer = MemoryPacer()
    pacer.reserve("k", 0.05)
    time.sleep(0.2)
    assert pacer.reserve("k", 0.05) == pytest.approx(0, abs=0.01)
    assert pacer.reserve("k", 0.05) > 0.03


# ---------------------------------------------------------------- database (SQLite and PostgreSQL)

def test_sql_pacer_threads_never_share_a_slot(database_url):
    store.upgrade(database_url)
    started = time.time()
    slots = from_threads(lambda: SqlPacer(database_url), new_key(), threads=4, each=5)
    assert_spaced(slots, 20, started)


def test_sql_pacer_processes_never_share_a_slot(database_url):
    store.upgrade(database_url)
    key, started = new_key(), time.time()
    slots = from_processes("sql", database_url, key, processes=2, each=8)
    assert_spaced(slots, 16, started)
    # The counter a third process would read continues the same schedule.
    next_slot = reserve_slots(SqlPacer(database_url), key, 1)[0]
    assert next_slot == pytest.approx(max(slots) + INTERVAL, abs=TOLERANCE)


@pytest.mark.postgres
def test_sql_pacer_accepts_every_postgresql_url_form():
    from tests.conftest import drop_postgres_database, postgres_database
    url = postgres_database()
    try:
        store.upgrade(url)
        key = new_key()
        waits = []
        for form in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            pacer = SqlPacer(url.replace("postgresql+psycopg://", form))
            assert pacer.engine.dialect.driver == "psycopg"
            waits.append(pacer.reserve(key, INTERVAL))
            pacer.engine.dispose()
        assert waits == pytest.approx([0, INTERVAL, 2 * INTERVAL], abs=TOLERANCE)
    finally:
        drop_postgres_database(url)


def test_sql_counter_keeps_sub_millisecond_precision(database_url):
    # A single-precision column would round a Unix time to minutes; the stored value must keep the slot exact.
    store.upgrade(database_url)
    pacer, key = SqlPacer(database_url), new_key()
    waits = [pacer.reserve(key, 0.001) for _ in range(3)]
    assert all(w < 1 for w in waits)
    with pacer.engine.connect() as conn:
        tat = conn.execute(pacing.rate_limits.select().where(pacing.rate_limits.c.key == key)).one().tat
    assert tat == pytest.approx(time.time(), abs=2)


# ---------------------------------------------------------------- Redis

@pytest.mark.redis
def test_redis_pacer_threads_never_share_a_slot(redis_url):
    started = time.time()
    assert_spaced(from_threads(lambda: RedisPacer(redis_url), new_key(), threads=4, each=5), 20, started)


@pytest.mark.redis
def test_redis_pacer_processes_never_share_a_slot(redis_url):
    started = time.time()
    assert_spaced(from_processes("redis", redis_url, new_key(), processes=2, each=8), 16, started)


@pytest.mark.redis
def test_redis_key_outlives_a_long_backlog(redis_url):
    pacer, key = RedisPacer(redis_url), new_key()
    reserve_slots(pacer, key, 10)  # a schedule 10,000 s long
    assert pacer.client.ttl(f"switchboard:pace:{key}") > 10 * INTERVAL


# ---------------------------------------------------------------- the process's shared pacer

def test_shared_pacer_is_one_per_url(tmp_path, redis_url):
    sqlite = f"sqlite:///{tmp_path}/pace.db"
    assert pacing.shared(sqlite, None) is pacing.shared(sqlite, None)
    assert isinstance(pacing.shared(sqlite, None), SqlPacer)
    assert isinstance(pacing.shared(sqlite, redis_url), RedisPacer)


# ---------------------------------------------------------------- the window's log, shared by processes

def assert_window_shared(first: Pacer, second: Pacer, key: str) -> None:
    # 100 calls a 1000 s window: the rate alone spaces them 10 s apart. One process hears from the vendor that its
    # window is spent (another app used it); the other process's next call waits the whole window.
    rate = pacing.Rate(100, INTERVAL)
    slot = first.acquire(key, rate)
    assert slot.delay < TOLERANCE
    first.release(slot, pacing.Quota(remaining=0))
    assert second.acquire(key, rate).delay >= INTERVAL - TOLERANCE


def test_sql_window_is_shared_by_processes(database_url):
    store.upgrade(database_url)
    assert_window_shared(SqlPacer(database_url), SqlPacer(database_url), new_key())


@pytest.mark.redis
def test_redis_window_is_shared_by_processes(redis_url):
    assert_window_shared(RedisPacer(redis_url), RedisPacer(redis_url), new_key())
