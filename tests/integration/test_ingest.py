"""The receiver's group commit (core/ingest.py) on SQLite and PostgreSQL: every event stored once and durably before
`store_events` returns, repeats answered with the first id, many threads (or gevent's greenlets) sharing commits."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import func, select

from core import ingest, store
from core.models import InboxEvent
from tests.conftest import DEFAULT_CONFIG, _in_use, drop_postgres_database, make_settings, postgres_database


def count() -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(InboxEvent)))


def test_events_are_stored_once_with_repeats_answered_by_the_first_id(db):
    first = ingest.store_events("form", [("a", "form", {"n": 1}), ("b", "form", {"n": 2}), ("a", "form", {"n": 1})])
    assert [created for _, created in first] == [True, True, False]
    assert first[0][0] == first[2][0] != first[1][0]
    again = ingest.store_events("form", [("b", "form", {"n": 2})])
    assert again == [(first[1][0], False)]
    other_source = ingest.store_events("aircall", [("a", "call.ended", {"n": 3})])
    assert other_source[0][1] is True
    assert count() == 3
    with store.session() as s:
        row = s.get(InboxEvent, first[0][0])
        assert (row.source, row.event_key, row.kind, row.payload, row.status) == ("form", "a", "form", {"n": 1},
                                                                                  "pending")


def test_the_payloads_json_text_is_orjsons_and_the_json_modules_for_what_orjson_refuses():
    assert ingest._json_text({"name": "Éva", "n": 1}) == '{"name":"Éva","n":1}'
    # A lone surrogate (no receiver lets one through, orjson refuses it): written anyway, not failing its batch.
    assert json.loads(ingest._json_text({"name": "\ud800"})) == {"name": "\ud800"}


def test_a_batch_of_new_events_and_repeats_gets_each_row_its_own_id(db):
    [(known, _)] = ingest.store_events("form", [("known", "form", {"n": 0})])
    stored = ingest.store_events("form", [("new1", "form", {"n": 1}), ("known", "form", {"n": 0}),
                                          ("new2", "form", {"n": 2})])
    assert [created for _, created in stored] == [True, False, True]
    assert stored[1][0] == known
    with store.session() as s:
        assert [s.get(InboxEvent, inbox_id).event_key for inbox_id, _ in stored] == ["new1", "known", "new2"]


def test_concurrent_requests_share_commits_and_lose_nothing(db):
    results: dict[int, list] = {}

    def post(n: int) -> None:
        results[n] = ingest.store_events("form", [(f"k{n % 40}", "form", {"n": n % 40})])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(80)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count() == 40
    created = [n for n, [(_, made)] in results.items() if made]
    assert len(created) == 40  # each key created by exactly one request
    ids = {n % 40: inbox_id for n, [(inbox_id, _)] in results.items()}
    assert all(results[n][0][0] == ids[n % 40] for n in results)


def test_more_events_than_one_batch_holds_are_all_written(db, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_BATCH", 2)
    stored = ingest.store_events("hubspot", [(f"e{n}", "contact.creation", {"n": n}) for n in range(5)])
    assert [created for _, created in stored] == [True] * 5 and len({i for i, _ in stored}) == 5
    assert count() == 5


def test_a_failed_write_fails_every_waiting_request_and_the_next_one_works(db, monkeypatch):
    real = ingest._write_sqlite if store.engine().dialect.name == "sqlite" else ingest._write_core
    name = real.__name__

    def broken(*args):
        monkeypatch.setattr(ingest, name, real)
        raise RuntimeError("database went away")

    monkeypatch.setattr(ingest, name, broken)
    with pytest.raises(RuntimeError):
        ingest.store_events("form", [("x", "form", {})])
    assert count() == 0
    assert ingest.store_events("form", [("x", "form", {})])[0][1] is True


def test_writers_of_one_sqlite_file_take_turns_on_its_lock_file(sqlite_url, tmp_path):
    """Another process (a second gunicorn worker) holding the write turn: our write waits for it, then goes on the
    moment it is released, instead of polling in SQLite's busy handler."""
    import subprocess
    import sys
    import time

    for _ in _in_use(make_settings(sqlite_url)):
        lock = f"{store.engine().url.database}.inbox-lock"
        released = tmp_path / "released"
        holder = subprocess.Popen([sys.executable, "-c", (
            "import fcntl, os, sys, time\n"
            f"fd = os.open({lock!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(0.5)\n"
            f"open({str(released)!r}, 'w').write(repr(time.time())); fcntl.flock(fd, fcntl.LOCK_UN)\n")],
            stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        stored = ingest.store_events("form", [("turn", "form", {})])
        done = time.time()
        holder.wait(timeout=10)
        assert stored[0][1] is True and count() == 1
        assert done >= float(released.read_text())  # written only after the other process's turn ended


@pytest.mark.postgres
def test_a_dropped_postgresql_connection_is_replaced_without_failing_the_request():
    """The writer keeps one connection (no ping per batch): when the server drops it, the next batch reconnects
    instead of answering 5xx."""
    url = postgres_database()
    try:
        for _ in _in_use(make_settings(url)):
            assert ingest.store_events("form", [("before", "form", {})])[0][1] is True
            backend = ingest.writer().connection[1].exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with store.engine().connect() as admin:
                admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
            assert ingest.store_events("form", [("after", "form", {})])[0][1] is True
            assert count() == 2
    finally:
        drop_postgres_database(url)


def test_the_inbox_writers_commits_never_checkpoint(sqlite_url, monkeypatch):
    """A checkpoint inside a batch's commit stalled every request queued behind it (core/ingest.py)."""
    monkeypatch.setattr(ingest, "CHECKPOINT_EVERY", 3600.0)  # the checkpointer sleeps through the writes
    for _ in _in_use(make_settings(sqlite_url)):
        for n in range(400):  # one commit each: about 4 WAL frames a commit, past SQLite's 1000-page trigger
            ingest.store_events("form", [(f"k{n}", "form", {"n": n})])
        busy, frames, copied = ingest.checkpoint(store.engine().url.database)
        assert busy == 0 and frames > 1100 and copied == frames  # none copied back by a commit; all of them now


def test_the_checkpointer_copies_the_wal_back_while_the_inbox_is_written(sqlite_url, monkeypatch):
    import os
    import time

    monkeypatch.setattr(ingest, "CHECKPOINT_EVERY", 0.05)
    for _ in _in_use(make_settings(sqlite_url)):
        for burst in range(4):
            for n in range(100):
                ingest.store_events("form", [(f"k{burst}.{n}", "form", {"n": n})])
            time.sleep(0.3)  # the checkpointer's turn
        wal = os.path.getsize(f"{store.engine().url.database}-wal")
        # Checkpointed between bursts, the WAL starts over and stays near one burst (~400 frames of 4 KiB);
        # left alone it would hold all four (~1600).
        assert count() == 400 and wal < 1000 * 4096


GREEN = """
from switchboard.launch import patch_for_gevent
patch_for_gevent()  # as `switchboard serve` does, before anything else
import json, sys
import gevent
from gevent.monkey import get_original
from core import ingest, settings
from core.settings import Env, load_config
env = Env(_env_file=None, database_url=sys.argv[1], switchboard_config=sys.argv[2])
settings.use(settings.Settings(env=env, config=load_config(env.switchboard_config)))
native = get_original("threading", "get_ident")
requests = [gevent.spawn(ingest.store_events, "form", [(f"g{n % 30}", "form", {"n": n % 30})]) for n in range(90)]
gevent.joinall(requests, raise_error=True)
ingest.writer().queued()
print(json.dumps({"results": [r.value[0] for r in requests],
                  "loop_thread": native(), "write_thread": ingest.off_the_loop(native)}))
"""


def test_under_gevent_greenlets_share_commits_written_off_the_event_loop(db, tmp_path):
    """`switchboard serve`'s workers are gevent's: many greenlets store at once, every event once, and the
    blocking write runs on another thread than the event loop's."""
    done = subprocess.run([sys.executable, "-c", GREEN, db, str(DEFAULT_CONFIG)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert count() == 30
    created = [inbox_id for inbox_id, made in report["results"] if made]
    assert len(created) == len(set(created)) == 30  # each key created by exactly one request
    by_key = {n % 30: inbox_id for n, (inbox_id, _) in enumerate(report["results"]) if n < 30}
    assert all(inbox_id == by_key[n % 30] for n, (inbox_id, _) in enumerate(report["results"]))
    assert report["write_thread"] != report["loop_thread"]
