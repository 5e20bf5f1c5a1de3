"""Leases: a claim a process holds (an inbox row it runs, an effect it is writing) is renewed every RENEW_EVERY
seconds while the process lives, by one heartbeat thread per process. A claim nobody renewed for STALE seconds
belongs to a process that died (`kill -9`, a lost machine): another attempt may take it over then, within seconds
instead of after the longest time a job could take.

The holder passes a `renew(now)` function; `held(renew)` keeps it on the heartbeat's list for the duration of a
block. Renewing is one conditional UPDATE, so a claim another attempt took over is left alone. A renewal that
fails (the database is down) is tried again at the next beat; a claim that goes stale meanwhile is taken over,
which the claims' own rules make safe (the taker searches before it writes; a mail is never sent twice).
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

log = logging.getLogger(__name__)

RENEW_EVERY = 5.0               # seconds between renewals
STALE = timedelta(seconds=30)   # six missed renewals: the holder is gone

Renew = Callable[[datetime], None]

_lock = threading.Lock()
_held: dict[int, Renew] = {}
_ids = itertools.count()
_heartbeat: list[tuple[int, threading.Thread]] = []  # (pid, thread): a forked child starts its own


@contextlib.contextmanager
def held(renew: Renew) -> Iterator[None]:
    """Renew a claim (`renew(now)`) on every heartbeat while the block runs."""
    token = next(_ids)
    with _lock:
        _held[token] = renew
        if not _heartbeat or _heartbeat[0][0] != os.getpid():
            thread = threading.Thread(target=_beat, name="lease-heartbeat", daemon=True)
            _heartbeat[:] = [(os.getpid(), thread)]
            thread.start()
    try:
        yield
    finally:
        with _lock:
            _held.pop(token, None)


def renew_all(now: datetime | None = None) -> None:
    """One heartbeat: renew every claim this process holds."""
    now = now or datetime.now(timezone.utc)
    with _lock:
        renewers = list(_held.values())
    for renew in renewers:
        try:
            renew(now)
        except Exception as exc:  # noqa: BLE001 - the database may be down: the next beat tries again
            log.warning("lease renewal failed: %s", type(exc).__name__)


def _beat() -> None:
    stop = threading.Event()  # never set: the thread lives as long as its process
    while not stop.wait(RENEW_EVERY):
        renew_all()
