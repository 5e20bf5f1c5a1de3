"""The running embedded default's record: found while its process lives, ignored once it is gone or unreadable."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from core import embedded


def test_a_live_run_is_found_and_a_clean_stop_forgets_it(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path = embedded.record(tmp_path, "http://127.0.0.1:8101", "http://127.0.0.1:8901", 8926)
        assert embedded.running(tmp_path) is None  # a process never attaches to its own record
        data = json.loads(path.read_text())
        path.write_text(json.dumps({**data, "pid": child.pid}))  # as if the child had written it
        assert embedded.running(tmp_path) == embedded.Embedded(child.pid, "http://127.0.0.1:8101",
                                                               "http://127.0.0.1:8901", 8926)
        embedded.forget(tmp_path)  # not ours: another run's record stays
        assert path.exists()
    finally:
        child.kill()
        child.wait()
    assert embedded.running(tmp_path) is None  # killed: its record is stale


def test_forget_removes_this_processes_record(tmp_path):
    path = embedded.record(tmp_path, "http://127.0.0.1:8000", "http://127.0.0.1:8900", 8925)
    assert json.loads(path.read_text())["pid"] == os.getpid()
    embedded.forget(tmp_path)
    assert not path.exists()
    assert not list(tmp_path.iterdir())  # no temporary file left either


def test_a_missing_or_broken_record_is_no_run(tmp_path):
    assert embedded.running(tmp_path) is None
    (tmp_path / embedded.FILE).write_text("{not json")
    assert embedded.running(tmp_path) is None
    (tmp_path / embedded.FILE).write_text(json.dumps({"pid": 1}))
    assert embedded.running(tmp_path) is None
