"""`flows/effects.py` on SQLite and on PostgreSQL: a write is claimed before it is made, so that two attempts at
one key at the same moment write once; a claim left by a dead process is taken over after a bounded time, by an
attempt that searches first; `send_once` keeps its documented at-most-once behaviour."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from core import store
from core.models import Effect, utcnow
from flows import effects


def claims(key: str) -> list[Effect]:
    with store.session() as s:
        found = s.get(Effect, key)
        s.expunge_all()
    return [found] if found is not None else []


def age(key: str, by: timedelta) -> None:
    with store.session() as s:
        s.execute(update(Effect).where(Effect.key == key).values(created_at=utcnow() - by))


def test_two_attempts_at_one_key_at_the_same_moment_write_once(db):
    barrier, writes, outcomes = threading.Barrier(2), [], {}

    def write() -> str:
        writes.append(threading.current_thread().name)
        time.sleep(0.5)  # still writing when the other attempt arrives
        return "901"

    def attempt(name: str) -> None:
        barrier.wait(timeout=5)
        try:
            outcomes[name] = effects.once("hubspot-contact:phone:abc", write)
        except effects.InFlight as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=attempt, args=(n,), name=n) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(writes) == 1
    assert sorted(type(o).__name__ for o in outcomes.values()) == ["InFlight", "str"]
    assert str(outcomes[next(n for n, o in outcomes.items() if isinstance(o, Exception))]) == "hubspot-contact"
    # The queue's retry of the attempt that met the claim finds the record, and writes nothing.
    assert effects.once("hubspot-contact:phone:abc", lambda: pytest.fail("written twice")) == "901"


def test_a_live_claim_is_not_taken_over(db):
    with store.session() as s:
        s.add(Effect(key="k", remote_id=None, detail=effects.CLAIM, created_at=utcnow()))
    age("k", effects.STALE_CLAIM - timedelta(seconds=30))
    with pytest.raises(effects.InFlight):
        effects.once("k", lambda: pytest.fail("wrote under another attempt's claim"),
                     find=lambda: pytest.fail("searched under another attempt's claim"))
    assert claims("k")[0].remote_id is None


def test_a_stale_claim_is_taken_over_by_an_attempt_that_searches_first(db):
    with store.session() as s:
        s.add(Effect(key="k", remote_id=None, detail=effects.CLAIM, created_at=utcnow()))
    age("k", effects.STALE_CLAIM + timedelta(seconds=1))  # its process died inside the write
    searched = []

    def find() -> str:
        searched.append(True)
        return "found-1"

    # Not a retry by the caller's account, yet it searches: the dead attempt may have written.
    assert effects.once("k", lambda: pytest.fail("created without searching"), find=find, retry=False) == "found-1"
    assert searched == [True] and claims("k")[0].remote_id == "found-1"


def test_a_stale_claim_with_nothing_found_is_written(db):
    with store.session() as s:
        s.add(Effect(key="k", remote_id=None, detail=effects.CLAIM, created_at=utcnow()))
    age("k", effects.STALE_CLAIM + timedelta(seconds=1))
    assert effects.once("k", lambda: "new-1", find=lambda: None) == "new-1"


def test_a_failed_write_releases_its_claim_so_the_retry_goes_ahead(db):
    def fail() -> str:
        raise RuntimeError("vendor down")

    with pytest.raises(RuntimeError):
        effects.once("k", fail)
    assert claims("k") == []
    assert effects.once("k", lambda: "written", find=lambda: None, retry=True) == "written"


def test_a_release_leaves_a_claim_that_was_taken_over_meanwhile(db):
    def slow_then_fail() -> str:
        # While this attempt hangs, its claim goes stale and another attempt takes it over.
        age("k", effects.STALE_CLAIM + timedelta(seconds=1))
        assert effects._claim("k") is not None
        raise RuntimeError("timed out at last")

    with pytest.raises(RuntimeError):
        effects.once("k", slow_then_fail)
    assert [c.remote_id for c in claims("k")] == [None]  # the taker's claim stands
    with pytest.raises(effects.InFlight):
        effects.once("k", lambda: pytest.fail("wrote under the taker's claim"))


def test_send_once_still_sends_at_most_once(db):
    sent = []

    def fail() -> str:
        raise RuntimeError("smtp down")

    with pytest.raises(RuntimeError):
        effects.send_once("mail:1", fail)
    assert not effects.sent("mail:1")  # a failed send leaves no intent: the retry sends
    assert effects.send_once("mail:1", lambda: sent.append(1) or "<id@x>") is True
    assert effects.send_once("mail:1", lambda: sent.append(2) or "<id@x>") is False
    # An intent whose sender died after the server could hold the message is never taken over, however old.
    with store.session() as s:
        store.record_effect(s, "mail:2", None, {"state": "maybe-sent"})
    age("mail:2", effects.STALE_CLAIM * 10)
    assert effects.send_once("mail:2", lambda: sent.append(3) or "<id@y>") is False
    assert sent == [1] and effects.sent("mail:2")


def test_an_intent_whose_sender_died_before_the_server_held_the_message_is_sent_by_the_retry(db):
    """`kill -9` between the intent and the server's 354 to DATA: nothing was sent, so the retry sends, once the
    dead sender's lease is stale; while the lease is live, another attempt leaves it alone."""
    with store.session() as s:
        store.record_effect(s, "mail:3", None, {"state": "sending"})
    assert effects.send_once("mail:3", lambda: pytest.fail("sent under a live intent")) is False
    age("mail:3", effects.STALE_CLAIM + timedelta(seconds=1))
    assert effects.send_once("mail:3", lambda: "<id@z>") is True
    assert claims("mail:3")[0].remote_id == "<id@z>"


def test_a_live_attempt_renews_its_claim_however_long_its_write_takes(db, monkeypatch):
    from flows import leases

    def slow() -> str:
        later = utcnow() + effects.STALE_CLAIM + timedelta(seconds=1)  # a long write...
        leases.renew_all(later)                                      # ...while the heartbeat renews its claim
        monkeypatch.setattr(effects, "_now", lambda: later)
        with pytest.raises(effects.InFlight):                        # so another attempt does not take it over
            effects._claim("k")
        return "w-1"

    assert effects.once("k", slow) == "w-1"
    assert claims("k")[0].remote_id == "w-1"


def test_a_renewed_claim_is_still_released_when_its_write_fails(db):
    from flows import leases

    def renewed_then_fail() -> str:
        leases.renew_all(utcnow() + timedelta(seconds=5))
        raise RuntimeError("vendor down")

    with pytest.raises(RuntimeError):
        effects.once("k", renewed_then_fail)
    assert claims("k") == []
