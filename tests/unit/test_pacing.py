"""The pacer's schedule in simulated time: calls that reach a vendor with random latency, counted in the vendor's
sliding window as the sandbox counts them (sandbox/state.py). No sleeping, no wall clock: every figure is exact.

Pacing at the documented rate with slots alone (the old `reserve`) puts one call too many into a window whenever a
call's latency is shorter than the one's a window before it; below the rate by a margin it wastes the margin. The
window's log (`acquire`/`release`) must do neither, for one process and for two sharing the schedule."""
from __future__ import annotations

import heapq
import random
from collections.abc import Callable

import pytest

from bench.drain import busiest
from connectors import pacing
from connectors.pacing import MemoryPacer, Quota, Rate, SqlPacer

HUBSPOT = Rate(100, 10.0)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now



def simulate(pacers: list[pacing.Pacer], clock: Clock, calls: int, rate: Rate = HUBSPOT, threads: int = 2,
             latency: float = 0.08, work: float = 0.01, seed: int = 7) -> list[float]:
    """`threads` callers per pacer (a worker's threads; a pacer per process) making `calls` calls in all, each
    waiting for its slot, reaching the vendor after a random part of `latency` and answered after another; the
    vendor's arrival times."""
    rng = random.Random(seed)
    arrivals: list[float] = []
    events: list[tuple[float, int, str, object]] = []  # (time, order, what, payload)
    order = 0
    for pacer in pacers:
        for _ in range(threads):
            heapq.heappush(events, (clock.now, order, "acquire", pacer))
            order += 1
    started = 0
    while events:
        clock.now, _, what, payload = heapq.heappop(events)
        order += 1
        if what == "acquire":
            if started == calls:
                continue
            started += 1
            pacer = payload  # type: ignore[assignment]
            slot = pacer.acquire("vendor", rate)
            arrival = clock.now + slot.delay + rng.uniform(0, latency)
            arrivals.append(arrival)
            heapq.heappush(events, (arrival + rng.uniform(0, latency), order, "release", (pacer, slot)))
        else:
            pacer, slot = payload  # type: ignore[misc]
            pacer.release(slot)
            heapq.heappush(events, (clock.now + work, order, "acquire", pacer))
    return arrivals


def achieved(arrivals: list[float], rate: Rate) -> float:
    """Calls per second over the drain, as a share of the rate (the first window is a free burst for any pacer
    that allows one; ours spaces it, so this is a fair floor)."""
    ordered = sorted(arrivals)
    return (len(ordered) - 1) / (ordered[-1] - ordered[0]) / (rate.requests / rate.per_seconds)


class SlotsOnly:
    """The old pacing: `reserve` alone, evenly spaced slots and nothing learnt from the answers."""

    def __init__(self, clock: Clock, margin: float) -> None:
        self.clock, self.margin, self.tat = clock, margin, 0.0

    def acquire(self, key: str, rate: Rate) -> pacing.Slot:
        start = max(self.tat, self.clock())
        self.tat = start + rate.interval * self.margin
        return pacing.Slot(key, rate, "", start - self.clock())

    def release(self, slot: pacing.Slot, quota: Quota | None = None) -> None:
        pass

    def reserve(self, key: str, interval: float) -> float:
        raise NotImplementedError


def test_slots_alone_overrun_the_window_at_the_rate_or_waste_the_margin():
    # What the window's log is for: the old pacer at the rate itself overruns the vendor's window, and with the
    # 10 % margin it stays within but drains at 0.91 of the rate.
    clock = Clock()
    at_rate = simulate([SlotsOnly(clock, 1.0)], clock, 1000)  # type: ignore[list-item]
    assert busiest(at_rate, HUBSPOT.per_seconds) > HUBSPOT.requests
    clock = Clock()
    margin = simulate([SlotsOnly(clock, 1.1)], clock, 1000)  # type: ignore[list-item]
    assert busiest(margin, HUBSPOT.per_seconds) <= HUBSPOT.requests
    assert achieved(margin, HUBSPOT) < 0.95


@pytest.mark.parametrize("latency,threads", [(0.005, 2), (0.08, 2), (0.3, 8)])
def test_one_process_never_overruns_the_window_and_drains_at_the_rate(latency, threads):
    clock = Clock()
    arrivals = simulate([MemoryPacer(clock)], clock, 1500, latency=latency, threads=threads)
    assert busiest(arrivals, HUBSPOT.per_seconds) <= HUBSPOT.requests
    # A window costs one call's latency more than the window: 1 - latency / 10 s of the rate.
    assert achieved(arrivals, HUBSPOT) >= 0.95


def test_two_processes_sharing_the_schedule_never_overrun_the_window(tmp_path):
    # Two pacers on one database (as two worker processes), each with two threads, on a simulated clock.
    from core import store
    url = f"sqlite:///{tmp_path}/pace.db"
    store.upgrade(url)
    clock = Clock()
    arrivals = simulate([SqlPacer(url, clock=clock), SqlPacer(url, clock=clock)], clock, 600, latency=0.2)
    assert busiest(arrivals, HUBSPOT.per_seconds) <= HUBSPOT.requests
    assert achieved(arrivals, HUBSPOT) >= 0.95


def test_two_unshared_pacers_would_overrun_it():
    # The same two processes each with a schedule of its own: the check above is not vacuous.
    clock = Clock()
    arrivals = simulate([MemoryPacer(clock), MemoryPacer(clock)], clock, 600, latency=0.2)
    assert busiest(arrivals, HUBSPOT.per_seconds) > HUBSPOT.requests


def drain(pacer: MemoryPacer, clock: Clock, rate: Rate, calls: int, quota: Callable[[int], Quota | None]) -> None:
    """`calls` calls one after another, each answered at once, the vendor reporting `quota(n)` for call n."""
    for n in range(calls):
        slot = pacer.acquire("vendor", rate)
        clock.now += slot.delay
        pacer.release(slot, quota(n))


def test_a_report_consistent_with_the_log_costs_nothing():
    clock = Clock()
    pacer = MemoryPacer(clock)
    drain(pacer, clock, HUBSPOT, 50, lambda n: Quota(HUBSPOT.requests - (n + 1)))
    assert pacer.acquire("vendor", HUBSPOT).delay == pytest.approx(HUBSPOT.interval)


def test_quota_spent_by_someone_else_holds_the_rest_of_the_window():
    # Another app on the same HubSpot account spent 60 of the window: after our 10 calls HubSpot says 30 remain.
    clock = Clock()
    pacer = MemoryPacer(clock)
    heard = clock.now
    drain(pacer, clock, HUBSPOT, 10, lambda n: Quota(HUBSPOT.requests - 60 - (n + 1)))
    started = clock.now
    drain(pacer, clock, HUBSPOT, 30, lambda n: None)
    assert clock.now - started == pytest.approx(30 * HUBSPOT.interval)  # the 30 left go at the rate
    slot = pacer.acquire("vendor", HUBSPOT)
    # ... and the next waits until the 60 unknown calls are a window old (counted from when we heard of them),
    # not the 0.1 s the rate alone would give.
    assert clock.now + slot.delay == pytest.approx(heard + HUBSPOT.per_seconds)


def test_an_exhausted_fixed_window_waits_for_its_reset():
    # Aircall: remaining 0 and the window resetting in 42 s.
    aircall = Rate(60, 60.0)
    clock = Clock()
    pacer = MemoryPacer(clock)
    slot = pacer.acquire("vendor", aircall)
    pacer.release(slot, Quota(0, reset_in=42.0))
    assert pacer.acquire("vendor", aircall).delay == pytest.approx(42.0)


def test_a_call_never_released_holds_its_place_for_a_while_only():
    # A worker killed mid-call: its slot counts as in the window while it could be in flight, then as answered at
    # the latest possible moment, and then it ages out like any other.
    rate = Rate(2, 10.0)
    clock = Clock()
    pacer = MemoryPacer(clock)
    lost = pacer.acquire("vendor", rate)
    starts = []
    for _ in range(3):
        slot = pacer.acquire("vendor", rate)
        clock.now += slot.delay
        starts.append(clock.now)
        pacer.release(slot)
    assert [b - a for a, b in zip(starts, starts[1:])] == pytest.approx([rate.per_seconds] * 2)  # one a window
    clock.now = starts[0] - rate.interval + pacing.IN_FLIGHT_SECONDS + rate.per_seconds
    assert pacer.acquire("vendor", rate).delay == 0  # two a window again
    assert lost.delay == 0


def test_the_schedule_keeps_only_what_can_still_matter():
    # A generous limit that is still logged: the shared state must not grow with the limit, only with the window.
    rate = Rate(pacing.LOG_MOST, 1.0)
    clock = Clock()
    pacer = MemoryPacer(clock)
    for _ in range(500):
        slot = pacer.acquire("vendor", rate)
        clock.now += slot.delay + 0.01
        pacer.release(slot)
    assert len(pacer._windows["vendor"]["ends"]) <= 101  # one window's worth at 100 calls a second


def test_a_limit_beyond_the_log_is_paced_by_spacing_alone_and_keeps_its_state_small() -> None:
    """Load tests raise limits to thousands a second; the state, rewritten on every call, must not grow with them."""
    from connectors.pacing import LOG_MOST, Rate, plan, settle
    rate = Rate(requests=LOG_MOST * 10, per_seconds=1.0)
    state: dict = {}
    starts = [plan(state, 100.0, rate, f"t{i}") for i in range(5000)]
    for i in range(5000):
        settle(state, 100.5, rate, f"t{i}")
    assert starts == sorted(starts) and starts[1] - starts[0] == pytest.approx(rate.interval)
    assert set(state) == {"tat"}
