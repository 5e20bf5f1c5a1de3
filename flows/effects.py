"""Exactly-once in effect: every outbound write goes through `once`, keyed by an idempotency key.

The effects table remembers what a write produced. A job that crashed after the remote write but before the
record finds the remote object on its retry by the key stamped on it (a HappyFox custom field, a HubSpot
property): `find` runs only on a retry, so a first attempt costs no extra call. Whether this is a retry is the
caller's `retry=`, or else what the running job said (`attempt(retry=...)`, set by the inbox job).

`_record` is the one step that follows every outbound write: the crash tests make it fail to prove that a retry
neither repeats nor loses a write.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any, Union

from sqlalchemy.exc import IntegrityError

from core import store

# A write or a find returns the remote id, or (remote id, detail) where detail holds ids worth remembering
# (never personal data): a HappyFox ticket's display id, say.
Remote = Union[str, int, tuple[Union[str, int], dict[str, Any]]]

_retrying: contextvars.ContextVar[bool] = contextvars.ContextVar("switchboard_retrying", default=False)


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
    """(remote id, detail) of the write `key`: recorded, found remotely (on a retry), or made now."""
    done = recorded_detail(key)
    if done is not None:
        return done
    retry = retrying() if retry is None else retry
    found = find() if (retry and find is not None) else None
    remote_id, detail = _split(found if found is not None else write())
    remote_id, detail = _record(key, remote_id, detail)
    return str(remote_id), detail


def once(key: str, write: Callable[[], Remote], *, find: Callable[[], Remote | None] | None = None,
         retry: bool | None = None) -> str:
    """The remote id the write `key` produced: recorded, found remotely (on a retry), or made now."""
    return once_detail(key, write, find=find, retry=retry)[0]


def send_once(key: str, send: Callable[[], str]) -> bool:
    """Send a message at most once (SMTP has no idempotency). The intent is committed before sending; a send
    that fails removes it so that the retry sends, while a crash after sending leaves it, and the retry does not
    send again. Returns whether this call sent."""
    with store.session() as s:
        if store.find_effect(s, key) is not None:
            return False
        try:
            with s.begin_nested():
                store.record_effect(s, key, None, {"state": "sending"})
        except IntegrityError:  # a concurrent attempt is sending it
            return False
    try:
        message_id = send()
    except BaseException:
        with store.session() as s:
            effect = store.find_effect(s, key)
            if effect is not None and effect.remote_id is None:
                s.delete(effect)
        raise
    _record(key, message_id, {"state": "sent"})
    return True


def sent(key: str) -> bool:
    """Whether the message `key` was sent (or its sending began and may have completed)."""
    with store.session() as s:
        return store.find_effect(s, key) is not None
