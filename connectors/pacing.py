"""Client-side pacing shared by every process: each call takes the next free slot of its vendor's rate and
sleeps until it, so that a backlog drains at the documented rate and never above it, however many workers run.

Two schedules, both kept where every process sees them (Redis when REDIS_URL is set, otherwise the database, in a
table this module owns):

- `reserve`: a slot counter alone (a "theoretical arrival time", as in GCRA with no burst).
- `acquire`/`release` (what connectors use, docs/decisions.md "Pacing at the limit"): the same spacing at the
  documented rate itself, plus the window's own log. A vendor counts calls in a window by when they reached it, which
  the client cannot see; it can bound it: a call reached the vendor after its slot began and before its answer
  came. So a call may start only a full window after the answer to the call `requests` back (calls still in flight
  count as inside the window). That is exact at any latency and costs one call's latency per window, not a margin.
  What the vendor reports of its window (remaining quota, reset) is folded in: calls it counts that the log does
  not know (another app on the same account) hold slots as if made now, and an exhausted window waits for its reset.

Hand-written because no library we use keeps such a schedule in SQL and Redis alike with one atomic step.
"""
from __future__ import annotations

import bisect
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Column, Float, MetaData, String, Table, Text, case, create_engine, insert, select, update
from sqlalchemy.exc import IntegrityError

metadata = MetaData()
rate_limits = Table("rate_limits", metadata, Column("key", String(60), primary_key=True),
                    Column("tat", Float, nullable=False),
                    Column("schedule", Text, nullable=True))  # acquire/release's state (JSON); tat: reserve's

# A call not released within this long (its process died) is taken as answered then: longer than any timeout.
IN_FLIGHT_SECONDS = 60.0
# Above this many calls a window the spacing alone paces: the log would hold thousands of entries, rewritten on
# every call, for a limit no vendor here has (the highest, Gmail's, is 100 a second); load tests raise theirs.
LOG_MOST = 1000


@dataclass(frozen=True)
class Rate:
    requests: int
    per_seconds: float

    @property
    def interval(self) -> float:
        return self.per_seconds / self.requests


@dataclass(frozen=True)
class Quota:
    """What a vendor's answer says of its window: calls `remaining` (this one counted), and for a fixed window the
    seconds until it resets."""
    remaining: int
    reset_in: float | None = None


@dataclass(frozen=True)
class Slot:
    key: str
    rate: Rate
    token: str
    delay: float  # seconds to wait before sending


State = dict[str, Any]  # {"tat": float, "ends": [float], "flight": {token: [start, expiry]}}


def plan(state: State, now: float, rate: Rate, token: str) -> float:
    """Take the next slot into `state` (changed in place) for call `token`; the slot's start (>= now)."""
    if rate.requests > LOG_MOST:
        start = max(now, float(state.get("tat", 0.0)))
        state["tat"] = start + rate.interval
        return start
    flight: dict[str, list[float]] = state.setdefault("flight", {})
    ends: list[float] = state.setdefault("ends", [])
    for stale, (_, expiry) in [(t, f) for t, f in flight.items() if f[1] <= now]:
        del flight[stale]
        ends.append(expiry)  # never released (its process died): answered at the latest then
    _prune(ends, flight, now, rate)
    tat = float(state.get("tat", 0.0))
    start = max(now, tat)
    need = rate.requests - len(flight)  # calls in flight may all be inside the vendor's window
    if need <= 0:
        start = max(start, min(expiry for _, expiry in flight.values()))
    elif len(ends) >= need:
        start = max(start, ends[-need] + rate.per_seconds)
    # Even spacing at the rate. A caller late by up to a tenth of a window keeps the schedule (the next slots catch
    # up); an idle schedule banks nothing. The log above, not the spacing, is what keeps the window.
    state["tat"] = (start if start > now or tat < now - rate.per_seconds / 10 else tat) + rate.interval
    flight[token] = [start, start + IN_FLIGHT_SECONDS]
    return start


def settle(state: State, now: float, rate: Rate, token: str, quota: Quota | None = None) -> None:
    """Record call `token` answered at `now`, with what the vendor said of its window."""
    if rate.requests > LOG_MOST:
        if quota is not None and quota.remaining <= 0 and quota.reset_in is not None:
            state["tat"] = max(float(state.get("tat", 0.0)), now + quota.reset_in)
        return
    flight: dict[str, list[float]] = state.setdefault("flight", {})
    ends: list[float] = state.setdefault("ends", [])
    started = flight.pop(token, [now, now])[0]
    ends.append(now)
    if quota is not None:
        # Every call the vendor can count in the window this one reached ended after this one's start less a
        # window: the log's count from there is at least the vendor's own, unless someone else spent quota.
        ours = sum(1 for end in ends if end > started - rate.per_seconds) + len(flight)
        unknown = rate.requests - quota.remaining - ours
        # Taken as made now, so out of the window a window from now; a fixed window clears them at its reset.
        made = now + min(0.0, quota.reset_in - rate.per_seconds) if quota.reset_in is not None else now
        ends.extend([made] * max(0, unknown))
        if quota.remaining <= 0 and quota.reset_in is not None:
            state["tat"] = max(float(state.get("tat", 0.0)), now + quota.reset_in)
    _prune(ends, flight, now, rate)


def _prune(ends: list[float], flight: dict[str, list[float]], now: float, rate: Rate) -> None:
    """Keep the answers that can still matter: the last `requests`, and of those only the ones within a window of
    now or of a call still in flight (whose settling counts back a window from its start). The state stays small
    however high the limit."""
    horizon = min([now, *(start for start, _ in flight.values())]) - rate.per_seconds
    ends.sort()
    del ends[:max(len(ends) - rate.requests, bisect.bisect_right(ends, horizon))]


def _settled(state: State, now: float, slot: Slot, quota: Quota | None) -> float:
    settle(state, now, slot.rate, slot.token, quota)
    return 0.0


class Pacer(Protocol):
    def reserve(self, key: str, interval: float) -> float:
        """Reserve the next slot `interval` seconds after the last one; return how long to wait for it."""

    def acquire(self, key: str, rate: Rate) -> Slot:
        """The next slot of `key`'s window at `rate`; release it when the call is answered."""

    def release(self, slot: Slot, quota: Quota | None = None) -> None:
        """The slot's call is over (answered, failed or never sent); `quota` as the vendor reported it."""


def _new_token() -> str:
    return uuid.uuid4().hex[:12]


class Report:
    """Where the code making a paced call puts what the vendor said of its window."""
    quota: Quota | None = None


@contextlib.contextmanager
def paced(pacer: Pacer, key: str, rate: Rate) -> Iterator[Report]:
    """Wait for the next slot of `key`, run the call, and release the slot when it is over, however it ended."""
    slot = pacer.acquire(key, rate)
    report = Report()
    try:
        if slot.delay > 0:
            time.sleep(slot.delay)
        yield report
    finally:
        pacer.release(slot, report.quota)


class Windows:
    """acquire/release for a pacer that can change a window's state atomically (`_update_window`)."""

    def _update_window(self, key: str, change: Callable[[State, float], float]) -> float:
        """Apply `change(state, now)` to `key`'s state as one atomic step; its result."""
        raise NotImplementedError

    def acquire(self, key: str, rate: Rate) -> Slot:
        token = _new_token()
        delay = self._update_window(key, lambda state, now: plan(state, now, rate, token) - now)
        return Slot(key, rate, token, delay)

    def release(self, slot: Slot, quota: Quota | None = None) -> None:
        self._update_window(slot.key, lambda state, now: _settled(state, now, slot, quota))


class MemoryPacer(Windows):
    """For one process only (unit tests, scripts). `clock` for tests that simulate time."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._tat: dict[str, float] = {}
        self._windows: dict[str, State] = {}
        self._lock = threading.Lock()
        self.clock = clock

    def _update_window(self, key: str, change: Callable[[State, float], float]) -> float:
        with self._lock:
            return change(self._windows.setdefault(key, {}), self.clock())

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


class SqlPacer(Windows):
    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # acquire/release's; tests simulate time with it
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

    def _update_window(self, key: str, change: Callable[[State, float], float]) -> float:
        self._ensure_row(key)
        with self.engine.begin() as conn:
            # The no-op write takes the row's lock first (PostgreSQL) or the database's (SQLite) before the read:
            # two processes never plan from the same state.
            conn.execute(update(rate_limits).where(rate_limits.c.key == key).values(tat=rate_limits.c.tat))
            raw = conn.execute(select(rate_limits.c.schedule).where(rate_limits.c.key == key)).scalar_one()
            state: State = json.loads(raw) if raw else {}
            now = self.clock()
            result = change(state, now)
            conn.execute(update(rate_limits).where(rate_limits.c.key == key).values(schedule=json.dumps(state)))
        return result


class RedisPacer(Windows):
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

    def _update_window(self, key: str, change: Callable[[State, float], float]) -> float:
        """Read, change and write the window's state in one optimistic transaction, on Redis's clock (so that
        hosts with skewed clocks share one schedule)."""
        name = f"switchboard:window:{key}"
        result: list[float] = []

        def attempt(pipe: Any) -> None:  # run again by redis-py whenever another process wrote the key meanwhile
            seconds, micros = pipe.time()
            raw = pipe.get(name)
            state: State = json.loads(raw) if raw else {}
            now = seconds + micros / 1_000_000
            result[:] = [change(state, now)]
            pipe.multi()
            pipe.set(name, json.dumps(state), ex=3600 + int(max(0.0, float(state.get("tat", 0)) - now)))

        self.client.transaction(attempt, name)
        return result[0]


_shared: dict[str, Pacer] = {}


def shared(database_url: str, redis_url: str | None) -> Pacer:
    """The process's pacer for these URLs (one engine or client per process)."""
    key = redis_url or database_url
    if key not in _shared:
        _shared[key] = RedisPacer(redis_url) if redis_url else SqlPacer(database_url)
    return _shared[key]
