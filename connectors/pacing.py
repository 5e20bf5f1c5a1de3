"""Client-side pacing shared by every process: each call reserves the next free slot of its vendor's rate and
sleeps until it, so that a backlog drains at the documented rate and never above it, however many workers run.

The slot counter (a "theoretical arrival time", as in GCRA with no burst) lives where every process sees it:
Redis when REDIS_URL is set, otherwise the database (a table this module owns, created by the migrations).
Hand-written because no library we use keeps such a counter in SQL and Redis alike with one atomic step.
"""
from __future__ import annotations

import threading
import time
from typing import Protocol

from sqlalchemy import Column, Float, MetaData, String, Table, case, create_engine, insert, update
from sqlalchemy.exc import IntegrityError

metadata = MetaData()
rate_limits = Table("rate_limits", metadata, Column("key", String(60), primary_key=True),
                    Column("tat", Float, nullable=False))


class Pacer(Protocol):
    def reserve(self, key: str, interval: float) -> float:
        """Reserve the next slot `interval` seconds after the last one; return how long to wait for it."""


def wait(pacer: Pacer, key: str, requests: int, per_seconds: float) -> float:
    delay = pacer.reserve(key, per_seconds / requests)
    if delay > 0:
        time.sleep(delay)
    return delay


class MemoryPacer:
    """For one process only (unit tests, scripts)."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str, interval: float) -> float:
        with self._lock:
            now = time.time()
            start = max(self._tat.get(key, 0.0), now)
            self._tat[key] = start + interval
            return start - now


def _with_driver(url: str) -> str:
    """PaaS add-ons hand out postgres:// URLs; SQLAlchemy would pick psycopg2, and we ship psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class SqlPacer:
    def __init__(self, url: str) -> None:
        url = _with_driver(url)
        sqlite = url.startswith("sqlite")
        self.engine = create_engine(url, connect_args={"timeout": 30} if sqlite else {"connect_timeout": 5},
                                    **({} if sqlite else {"pool_pre_ping": True}))
        self._known: set[str] = set()

    def _ensure_row(self, key: str) -> None:
        """Create the key's row in a transaction of its own. A key counts as known only once its row is committed
        (by us, or by the process whose insert ours waited for): another thread's uncommitted row is invisible to
        our UPDATE on PostgreSQL, which would then find nothing."""
        if key in self._known:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(rate_limits).values(key=key, tat=0.0))
        except IntegrityError:
            pass
        self._known.add(key)

    def reserve(self, key: str, interval: float) -> float:
        self._ensure_row(key)
        now = time.time()
        with self.engine.begin() as conn:
            # One UPDATE ... RETURNING is atomic on SQLite and PostgreSQL alike: two processes never get one slot.
            start = case((rate_limits.c.tat > now, rate_limits.c.tat), else_=now)
            tat = conn.execute(update(rate_limits).where(rate_limits.c.key == key)
                               .values(tat=start + interval).returning(rate_limits.c.tat)).scalar_one()
        return float(tat) - interval - now


class RedisPacer:
    # Redis's own clock, so that dynos with skewed clocks still share one schedule.
    SCRIPT = """
    local t = redis.call('TIME')
    local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
    local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
    local start = math.max(tat, now)
    local next_slot = start + tonumber(ARGV[1])
    -- Keep the key at least as long as the schedule it holds (a long backlog), and an hour after that.
    local ttl = math.max(3600, math.ceil(next_slot - now) + 3600)
    redis.call('SET', KEYS[1], string.format('%.6f', next_slot), 'EX', ttl)
    return string.format('%.6f', start - now)
    """

    def __init__(self, url: str) -> None:
        import redis
        self.client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
        self._script = self.client.register_script(self.SCRIPT)

    def reserve(self, key: str, interval: float) -> float:
        return float(self._script(keys=[f"switchboard:pace:{key}"], args=[interval]))


_shared: dict[str, Pacer] = {}


def shared(database_url: str, redis_url: str | None) -> Pacer:
    """The process's pacer for these URLs (one engine or client per process)."""
    key = redis_url or database_url
    if key not in _shared:
        _shared[key] = RedisPacer(redis_url) if redis_url else SqlPacer(database_url)
    return _shared[key]
