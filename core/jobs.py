"""The job engine: one huey instance (SQLite by default, Redis when REDIS_URL is set), retries with exponential
backoff, and a clock that fires each periodic job exactly once per minute however many clocks or workers run.

Flows register their work with `@job` and their schedule with `@periodic(crontab(...))`. Workers never enqueue
periodic jobs themselves (`periodic=False`); only `tick()` does, guarded by an atomic compare-and-set in the
database, so two clocks started by mistake still fire each job once.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar, overload

from huey import Huey, RedisHuey, SqliteHuey
from huey import crontab as crontab  # re-exported for flows
from huey.consumer import Consumer
from redis import ConnectionPool
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from core import settings, store
from core.models import Cursor

log = logging.getLogger(__name__)

RETRIES = 8          # 2 s, 4 s, ... 256 s: about 8.5 minutes of trying before a job is given up
RETRY_DELAY = 2.0
RETRY_BACKOFF = 2.0


def make_huey(redis_url: str | None = None, sqlite_path: str | None = None, immediate: bool = False) -> Huey:
    if redis_url:
        # Timeouts so that a Redis outage makes /readyz answer 503 instead of hanging. huey refuses `url` together
        # with connection options, so the pool is built here.
        pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=3, socket_timeout=10)
        return RedisHuey("switchboard", connection_pool=pool, immediate=immediate, utc=True)
    path = sqlite_path or str(settings.data_dir() / "huey.db")
    return SqliteHuey("switchboard", filename=path, immediate=immediate, utc=True)


huey: Huey = make_huey(settings.load_env().redis_url)


_by_name: dict[str, Any] = {}


@overload
def job(fn: Callable[..., Any], *, retries: int = ..., **options: Any) -> Any: ...
@overload
def job(fn: None = None, *, retries: int = ..., **options: Any) -> Callable[[Callable[..., Any]], Any]: ...
def job(fn: Callable[..., Any] | None = None, *, retries: int = RETRIES, **options: Any) -> Any:
    """Register `fn` as a background job retried with exponential backoff (2 s doubling)."""
    def register(f: Callable[..., Any]) -> Any:
        # huey names a task by its function alone, so job names must be unique across modules (see enqueue).
        task = huey.task(retries=retries, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF, **options)(f)
        if _by_name.get(f.__name__, task) is not task:
            raise ValueError(f"two jobs named {f.__name__!r}: job names must be unique")
        _by_name[f.__name__] = task
        return task
    return register(fn) if fn is not None else register


def enqueue(name: str, *args: Any) -> Any:
    """Queue the job registered as `name` (its function's name), for code that may not import flows."""
    if name not in _by_name:
        raise LookupError(f"no job named {name!r}: switchboard.runtime.load_jobs() imports the job modules")
    return _by_name[name](*args)


def periodic(schedule: Callable[[datetime], bool], **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """Register a job the clock enqueues when `schedule` (a huey crontab) matches the minute."""
    def register(f: Callable[..., Any]) -> Any:
        return huey.periodic_task(schedule, retries=2, retry_delay=60, **options)(f)
    return register


R = TypeVar("R", bound=Callable[[], Any])
RECOVER_EVERY = 10.0  # seconds between the workers' recovery sweeps
_recoveries: list[Callable[[], Any]] = []


def recovery(fn: R) -> R:
    """Register `fn` to run every RECOVER_EVERY seconds in every worker process (`run_recovery`), so that work a
    dead process left behind is found within seconds rather than at the clock's next minute. It must be safe to
    run in several processes at once."""
    _recoveries.append(fn)
    return fn


def run_recovery(stop: threading.Event) -> None:
    """Run the recovery sweeps at start and every RECOVER_EVERY seconds until `stop` is set."""
    while True:
        for fn in list(_recoveries):
            try:
                fn()
            except Exception as exc:  # a database or queue outage: the next round tries again
                log.warning("recovery %s failed: %s", fn.__name__, type(exc).__name__)
        if stop.wait(RECOVER_EVERY):
            return


def start_recovery(stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=run_recovery, args=(stop,), name="recovery", daemon=True)
    thread.start()
    return thread


def idle(target: Huey | None = None) -> bool:
    """Whether the queue holds no job at all, waiting or scheduled (a retry)."""
    target = target or huey
    return bool(target.pending_count() == 0 and target.scheduled_count() == 0)


def _claim(name: str, minute: str) -> bool:
    """True for exactly one caller per (job, minute), across processes: a conditional UPDATE is atomic on both
    SQLite and PostgreSQL, and the row is created on first use."""
    key = f"clock:{name}"
    with store.session() as s:
        if s.get(Cursor, key) is None:
            try:
                with s.begin_nested():
                    s.add(Cursor(name=key, value=""))
            except IntegrityError:
                pass
        won = s.scalar(update(Cursor).where(Cursor.name == key, Cursor.value < minute).values(value=minute)
                       .returning(Cursor.name))
        return won is not None


def job_name(task: Any) -> str:
    """A task's qualified name, "<module>.<function>", as huey registers it."""
    return f"{type(task).__module__}.{task.name}"


def tick(now: datetime | None = None, target: Huey | None = None) -> list[str]:
    """Enqueue every periodic job due at `now`'s minute that no other clock has enqueued yet."""
    target = target or huey
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(second=0, microsecond=0)
    minute = now.strftime("%Y-%m-%dT%H:%M")
    fired = []
    for task in target.read_periodic(now.replace(tzinfo=None)):
        if _claim(job_name(task), minute):
            target.enqueue(task)
            fired.append(job_name(task))
    if fired:
        log.info("clock fired %s", ", ".join(fired))
    return fired


def run_clock(stop: threading.Event, target: Huey | None = None) -> None:
    """Tick at the start of every minute until `stop` is set."""
    log.info("clock started")
    while not stop.is_set():
        try:
            tick(target=target)
        except Exception:  # a database or queue outage skips this minute; the clock itself keeps going
            log.exception("clock tick failed")
        stop.wait(60 - time.time() % 60 + 0.5)
    log.info("clock stopped")


def consumer(workers: int = 2, target: Huey | None = None) -> Consumer:
    """A huey consumer that runs jobs but leaves periodic enqueueing to the clock."""
    return Consumer(target or huey, workers=workers, periodic=False, worker_type="thread",
                    check_worker_health=True, shutdown_timeout=30)


def ping(target: Huey | None = None) -> None:
    """Raise when the queue's storage cannot be reached."""
    storage = (target or huey).storage
    if hasattr(storage, "conn") and hasattr(storage.conn, "ping"):
        storage.conn.ping()
    else:
        storage.queue_size()
