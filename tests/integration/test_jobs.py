"""The job engine: huey on SQLite and on Redis with a real consumer, retries with exponential backoff, and a
clock that enqueues each periodic job exactly once per minute however many clocks tick."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from huey import crontab

from core import jobs
from core import settings as settings_module
from core import store
from core.settings import ROOT
from tests.conftest import make_settings
from webhooks.app import create_app

HERE = __name__  # huey qualifies a task's name with the module it is defined in


@pytest.fixture
def own_signals():
    """huey's Consumer.start() installs signal handlers in the main thread; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def queue(request, tmp_path: Path):
    """A huey instance of its own (not the process's `jobs.huey`) on each storage."""
    if request.param == "sqlite":
        return jobs.make_huey(sqlite_path=str(tmp_path / "huey.db"))
    return jobs.make_huey(redis_url=request.getfixturevalue("redis_url"))


def run_consumer(huey):
    consumer = jobs.consumer(workers=1, target=huey)
    consumer.start()
    return consumer


def test_a_job_is_run_by_a_real_consumer(queue, own_signals):
    ran = threading.Event()

    @queue.task(name="tests.add")
    def add(a: int, b: int) -> int:
        ran.set()
        return a + b

    result = add(2, 3)
    assert not ran.is_set() and queue.pending_count() == 1  # queued, not run inline
    consumer = run_consumer(queue)
    try:
        assert result.get(blocking=True, timeout=10) == 5
    finally:
        consumer.stop(graceful=True)
    assert queue.pending_count() == 0


def test_a_failing_job_is_retried_by_the_consumer(queue, own_signals):
    attempts: list[int] = []
    succeeded = threading.Event()

    @queue.task(name="tests.flaky", retries=2, retry_delay=0.01, retry_backoff=2)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 2:
            raise RuntimeError("vendor said 503")
        succeeded.set()
        return "done"

    flaky()
    consumer = run_consumer(queue)
    try:
        assert succeeded.wait(timeout=10)
    finally:
        consumer.stop(graceful=True)
    assert len(attempts) == 2


def test_registered_jobs_back_off_exponentially():
    """A @job's retries: 2 s, then 4 s, 8 s ... (the schedule huey keeps for the task), RETRIES times."""
    calls: list[int] = []

    @jobs.job
    def always_fails_for_backoff_test() -> None:
        calls.append(1)
        raise RuntimeError("down")

    huey = jobs.huey
    huey.flush()
    try:
        always_fails_for_backoff_test()
        assert jobs.enqueue("always_fails_for_backoff_test") is not None  # also reachable by name
        huey.dequeue()  # the by-name copy; one task is enough
        task = huey.dequeue()
        assert (task.retries, task.retry_delay, task.retry_backoff) == (jobs.RETRIES, 2.0, 2.0)
        for delay in (2.0, 4.0, 8.0):
            before = datetime.now(timezone.utc).replace(tzinfo=None)  # huey keeps naive UTC
            huey.execute(task, timestamp=task.eta or before)  # run it as the scheduler would, when due
            after = datetime.now(timezone.utc).replace(tzinfo=None)
            [task] = huey.scheduled()  # not queued again at once: scheduled `delay` seconds on
            assert before + timedelta(seconds=delay) <= task.eta <= after + timedelta(seconds=delay)
            assert task.retry_delay == delay * jobs.RETRY_BACKOFF
            huey.flush()
        assert task.retries == jobs.RETRIES - 3
        assert len(calls) == 3
    finally:
        huey.flush()


def test_enqueue_by_unknown_name_says_what_is_missing():
    with pytest.raises(LookupError, match="no job named 'nope'"):
        jobs.enqueue("nope")


# ---------------------------------------------------------------- the clock



def two_clocks(tmp_path: Path):
    """Two huey instances on one queue, as two clock processes would have, each knowing the same schedule."""
    clocks = [jobs.make_huey(sqlite_path=str(tmp_path / "queue.db")) for _ in range(2)]
    for huey in clocks:
        huey.periodic_task(crontab(), name="every_minute")(lambda: None)
        huey.periodic_task(crontab(minute="*/5"), name="every_five")(lambda: None)
    return clocks


def tick_together(clocks, now: datetime) -> list[str]:
    barrier = threading.Barrier(len(clocks))
    fired: list[str] = []
    errors: list[BaseException] = []

    def run(huey) -> None:
        try:
            barrier.wait(timeout=5)
            fired.extend(jobs.tick(now, target=huey))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(huey,)) for huey in clocks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return fired


def test_two_clocks_enqueue_each_periodic_job_once_per_minute(db, tmp_path):
    clocks = two_clocks(tmp_path)
    minute = datetime(2026, 11, 24, 10, 0, 7, tzinfo=timezone.utc)

    assert sorted(tick_together(clocks, minute)) == [f"{HERE}.every_five", f"{HERE}.every_minute"]
    assert clocks[0].pending_count() == 2
    # Any number of further ticks within the same minute (a restart, a third clock) fire nothing.
    assert tick_together(clocks, minute.replace(second=59)) == []
    assert jobs.tick(minute, target=clocks[0]) == []
    assert clocks[0].pending_count() == 2

    # The next minute: only the every-minute job, once.
    assert tick_together(clocks, minute + timedelta(minutes=1)) == [f"{HERE}.every_minute"]
    assert clocks[0].pending_count() == 3
    # A clock running late for a past minute does not fire it twice either.
    assert jobs.tick(minute, target=clocks[1]) == []


def test_clock_minutes_are_utc(db, tmp_path):
    [huey, _] = two_clocks(tmp_path)
    budapest = timezone(timedelta(hours=1))
    assert sorted(jobs.tick(datetime(2026, 11, 24, 11, 5, tzinfo=budapest), target=huey)) == [
        f"{HERE}.every_five", f"{HERE}.every_minute"]
    # The same instant written in UTC is the same minute: already fired.
    assert jobs.tick(datetime(2026, 11, 24, 10, 5, 30, tzinfo=timezone.utc), target=huey) == []


# ---------------------------------------------------------------- readiness of the queue

def test_ping_reaches_sqlite_and_redis(queue):
    jobs.ping(queue)


def test_unreachable_redis_fails_ping_and_readyz_names_the_queue(sqlite_url, monkeypatch):
    down = jobs.make_huey(redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(Exception) as err:
        jobs.ping(down)
    assert "Connection" in type(err.value).__name__

    # The process's queue is what REDIS_URL selected at start-up; here, the unreachable one.
    monkeypatch.setattr(jobs, "huey", down)
    store.upgrade(sqlite_url)
    try:
        client = create_app(make_settings(sqlite_url)).test_client()
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert list(ready.json["problems"]) == ["queue"]
        assert "unreachable" in ready.json["problems"]["queue"]
    finally:
        settings_module.use(None)
        store.dispose()


@pytest.mark.parametrize("redis", [False, pytest.param(True, marks=pytest.mark.redis)])
def test_redis_url_selects_the_process_queue(redis, request, tmp_path):
    """`jobs.huey` is built from the environment at import: SQLite by default, Redis with REDIS_URL."""
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    if redis:
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    code = "from core import jobs; jobs.ping(); print(type(jobs.huey).__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("RedisHuey" if redis else "SqliteHuey")
    assert (tmp_path / "huey.db").exists() is not redis
