"""Exactly-once in effect: every outbound write goes through `once`, keyed by an idempotency key.

The effects table remembers what a write produced. A job that crashed after the remote write but before the
record finds the remote object on its retry by the key stamped on it (a HappyFox custom field, a HubSpot
property): `find` runs only on a retry, so a first attempt costs no extra call. Whether this is a retry is the
caller's `retry=`, or else what the running job said (`attempt(retry=...)`, set by the inbox job).

Two attempts at the same key at the same moment (two events of one call, a sweep and a retry) must not both
write: `once` first claims the key with a row that has no remote id yet (committed on its own), and an attempt
that meets a live claim raises `InFlight`, a transient error the job queue retries; by then the record is there.
An attempt that fails in our process releases its claim, so its retry proceeds at once. A claim is a lease
(flows/leases.py): its time is moved on every few seconds while the attempt runs, so a claim left by a process that
died is taken over once it is `STALE_CLAIM` (30 s) old, and the taker searches with `find` first, as a retry does.

`_record` is the one step that follows every outbound write: the crash tests make it fail to prove that a retry
neither repeats nor loses a write.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, Union

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from connectors import mail
from connectors.errors import MaybeSent
from core import store
from core.models import Effect

from . import leases

log = logging.getLogger(__name__)

# A write or a find returns the remote id, or (remote id, detail) where detail holds ids worth remembering
# (never personal data): a HappyFox ticket's display id, say.
Remote = Union[str, int, tuple[Union[str, int], dict[str, Any]]]

# A live attempt renews its claim however long its write takes (a call at its worst is minutes under the HTTP
# policy), so only a claim whose process died gets this old.
STALE_CLAIM = leases.STALE
CLAIM = {"state": "claimed"}

_retrying: contextvars.ContextVar[bool] = contextvars.ContextVar("switchboard_retrying", default=False)


class InFlight(Exception):
    """Another attempt is making this write right now: retry later, and find its record."""


@contextlib.contextmanager
def attempt(retry: bool) -> Iterator[None]:
    """Within this block, `once` treats its writes as possibly made already by an earlier attempt."""
    token = _retrying.set(retry)
    try:
        yield
    finally:
        _retrying.reset(token)


def retrying() -> bool:
    return _retrying.get()


def recorded(key: str) -> str | None:
    with store.session() as s:
        effect = store.find_effect(s, key)
        return effect.remote_id if effect else None


def recorded_detail(key: str) -> tuple[str, dict[str, Any]] | None:
    with store.session() as s:
        effect = store.find_effect(s, key)
        if effect is None or effect.remote_id is None:
            return None
        return effect.remote_id, dict(effect.detail or {})


def _split(result: Remote) -> tuple[str, dict[str, Any]]:
    if isinstance(result, tuple):
        return str(result[0]), dict(result[1] or {})
    return str(result), {}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _claim(key: str) -> tuple[datetime, bool] | None:
    """Claim `key` for this attempt: (the claim's time, whether it took over a stale claim), or None when the
    write is recorded already. Raises InFlight while another attempt holds a live claim. Each step is one atomic
    statement, on SQLite and PostgreSQL alike."""
    now = _now()
    with store.session() as s:
        try:
            with s.begin_nested():
                s.add(Effect(key=key, remote_id=None, detail=CLAIM, created_at=now))
            return now, False
        except IntegrityError:
            pass
        taken = s.execute(update(Effect).where(Effect.key == key, Effect.remote_id.is_(None),
                                               Effect.created_at < now - STALE_CLAIM)
                          .values(created_at=now, detail=CLAIM))
        if store.rowcount(taken) == 1:
            log.warning("effect %s: took over a stale claim", key.split(":", 1)[0])
            return now, True
        effect = store.find_effect(s, key)
        if effect is not None and effect.remote_id is not None:
            return None
    raise InFlight(key.split(":", 1)[0])  # the key's kind only: a key may carry a report id


class _Lease:
    """Our claim on `key` and its current time, which each renewal moves on (under `lock`, so that a release
    deletes the claim by the time it has now)."""

    def __init__(self, key: str, at: datetime) -> None:
        self.key, self.at, self.lock = key, at, threading.Lock()

    def renew(self, now: datetime) -> None:
        with self.lock, store.session() as s:
            moved = s.execute(update(Effect).where(Effect.key == self.key, Effect.remote_id.is_(None),
                                                   Effect.created_at == self.at).values(created_at=now))
            if store.rowcount(moved) == 1:
                self.at = now

    def release(self) -> None:
        with self.lock:
            _release(self.key, self.at)


def _release(key: str, claimed_at: datetime) -> None:
    """Drop our claim after a failed attempt, so that its retry goes ahead at once. Only ours: a claim taken over
    since has another time. Failing here leaves the claim to go stale."""
    try:
        with store.session() as s:
            s.execute(delete(Effect).where(Effect.key == key, Effect.remote_id.is_(None),
                                           Effect.created_at == claimed_at))
    except Exception as exc:  # noqa: BLE001 - the write's own error is the one to raise
        log.warning("effect %s: claim not released (%s); it goes stale", key.split(":", 1)[0], type(exc).__name__)


def _record(key: str, remote_id: str | None, detail: dict[str, Any] | None) -> tuple[str | None, dict[str, Any]]:
    """Remember a write. When a concurrent attempt recorded the same key first, its record wins."""
    with store.session() as s:
        effect = store.find_effect(s, key)
        if effect is None:
            try:
                with s.begin_nested():
                    effect = store.record_effect(s, key, remote_id, detail)
            except IntegrityError:
                effect = store.find_effect(s, key)
        elif effect.remote_id is None:
            effect.remote_id, effect.detail = remote_id, detail
        assert effect is not None
        return effect.remote_id, dict(effect.detail or {})


def once_detail(key: str, write: Callable[[], Remote], *, find: Callable[[], Remote | None] | None = None,
                retry: bool | None = None) -> tuple[str, dict[str, Any]]:
    """(remote id, detail) of the write `key`: recorded, found remotely (on a retry), or made now. Raises
    InFlight while another attempt is making it."""
    done = recorded_detail(key)
    if done is not None:
        return done
    claim = _claim(key)
    if claim is None:  # recorded by a concurrent attempt since we looked
        done = recorded_detail(key)
        assert done is not None
        return done
    claimed_at, took_over = claim
    retry = took_over or (retrying() if retry is None else retry)
    lease = _Lease(key, claimed_at)
    with leases.held(lease.renew):
        try:
            found = find() if (retry and find is not None) else None
            written, detail = _split(found if found is not None else write())
            remote_id, detail = _record(key, written, detail)
        except BaseException:
            lease.release()
            raise
    return str(remote_id), detail


def once(key: str, write: Callable[[], Remote], *, find: Callable[[], Remote | None] | None = None,
         retry: bool | None = None) -> str:
    """The remote id the write `key` produced: recorded, found remotely (on a retry), or made now."""
    return once_detail(key, write, find=find, retry=retry)[0]


SENDING, MAYBE_SENT = {"state": "sending"}, {"state": "maybe-sent"}


class Superseded(Exception):
    """Our intent to send was taken over (this process stalled past the lease): the other attempt sends."""


def send_once(key: str, send: Callable[[], str]) -> bool:
    """Send a message at most once (SMTP has no idempotency). The intent is committed before sending, as a lease
    renewed while the send runs. The moment the server may hold the message (its 354 to DATA, connectors/mail.py
    `before_message`) the intent becomes `maybe-sent`, and from then on no retry sends it again: not after a
    crash, nor after a MaybeSent. Before that moment the server holds nothing: a send that fails removes the
    intent so that the retry sends, and an intent left `sending` by a process that died (its lease not renewed
    for STALE_CLAIM) is taken over and sent. Returns whether this call sent (False too while a concurrent attempt
    is sending it)."""
    claimed_at = _intend(key)
    if claimed_at is None:
        return False
    lease = _Lease(key, claimed_at)
    with leases.held(lease.renew), mail.before_message(lambda: _committing(lease)):
        try:
            message_id = send()
        except MaybeSent:
            # The server may hold the message (its answer was lost): the intent stays, so no retry sends it again.
            _record(key, None, MAYBE_SENT)
            raise
        except BaseException:
            lease.release()  # ours only: an intent taken over since belongs to its taker
            raise
    _record(key, message_id, {"state": "sent"})
    return True


def _intend(key: str) -> datetime | None:
    """Commit the intent to send `key` (or take over one whose sender died before the server could hold the
    message); its time, or None when the message is sent, may be sent, or is being sent right now."""
    now = _now()
    with store.session() as s:
        try:
            with s.begin_nested():
                s.add(Effect(key=key, remote_id=None, detail=SENDING, created_at=now))
            return now
        except IntegrityError:
            pass
        effect = store.find_effect(s, key)
        if (effect is None or effect.remote_id is not None or effect.detail != SENDING
                or effect.created_at >= now - STALE_CLAIM):
            return None
        taken = s.execute(update(Effect).where(Effect.key == key, Effect.remote_id.is_(None),
                                               Effect.created_at == effect.created_at).values(created_at=now))
        if store.rowcount(taken) != 1:
            return None
    log.warning("effect %s: took over the intent of a sender that died before sending", key.split(":", 1)[0])
    return now


def _committing(lease: _Lease) -> None:
    """The server is about to receive the message: mark the intent `maybe-sent`, if it is still ours."""
    with lease.lock, store.session() as s:
        marked = s.execute(update(Effect).where(Effect.key == lease.key, Effect.remote_id.is_(None),
                                                Effect.created_at == lease.at).values(detail=MAYBE_SENT))
        if store.rowcount(marked) != 1:
            raise Superseded(lease.key.split(":", 1)[0])


def sent(key: str) -> bool:
    """Whether the message `key` was sent (or its sending began and may have completed)."""
    with store.session() as s:
        return store.find_effect(s, key) is not None
