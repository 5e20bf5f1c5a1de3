"""Exactly-once in effect: every outbound write goes through `once`, keyed by an idempotency key.

The effects table remembers what a write produced. A job that crashed after the remote write but before the
record finds the remote object on its retry by the key stamped on it (a HappyFox custom field, a HubSpot
property): `find` runs only on a retry, so a first attempt costs no extra call.
"""
from __future__ import annotations

from collections.abc import Callable

from core import store


def recorded(key: str) -> str | None:
    with store.session() as s:
        effect = store.find_effect(s, key)
        return effect.remote_id if effect else None


def once(key: str, write: Callable[[], str], *, find: Callable[[], str | None] | None = None,
         retry: bool = False) -> str:
    """The remote id the write `key` produced: recorded, found remotely (on a retry), or made now."""
    with store.session() as s:
        effect = store.find_effect(s, key)
        if effect is not None and effect.remote_id is not None:
            return effect.remote_id
    remote_id = find() if (retry and find is not None) else None
    if remote_id is None:
        remote_id = write()
    with store.session() as s:
        store.record_effect(s, key, str(remote_id))
    return str(remote_id)


def send_once(key: str, send: Callable[[], str]) -> bool:
    """Send a message at most once (SMTP has no idempotency). The intent is committed before sending; a send
    that fails removes it so that the retry sends, while a crash after sending leaves it, and the retry does not
    send again. Returns whether this call sent."""
    with store.session() as s:
        if store.find_effect(s, key) is not None:
            return False
        store.record_effect(s, key, None, {"state": "sending"})
    try:
        message_id = send()
    except BaseException:
        with store.session() as s:
            effect = store.find_effect(s, key)
            if effect is not None:
                s.delete(effect)
        raise
    with store.session() as s:
        effect = store.find_effect(s, key)
        if effect is not None:
            effect.remote_id, effect.detail = message_id, {"state": "sent"}
    return True
