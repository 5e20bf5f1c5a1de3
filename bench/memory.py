"""A worker's memory over a long run (#14 P5): the resident set of one `switchboard worker` process after the first
500 events and after 5,000, against the sandbox.

The events are stored as the receiver stores them (core/ingest.py: the inbox row and its queued job): website
forms, each a new customer's enquiry (a HappyFox ticket, a HubSpot contact and ticket, a confirmation mail), and
one in five an Aircall `call.ended` of a call the sandbox made. They are fed in batches once the worker has done
the last, so the queue stays short and the figure is the worker's own, not a backlog's.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENTS = int(os.environ.get("BENCH_MEMORY_EVENTS", 5000))
FIRST = 500
BATCH = 100
CALL_EVERY = 5
TARGET_RATIO = 1.10
WORKER_THREADS = 2  # `switchboard worker`'s default


@dataclass
class Run:
    samples: list[tuple[int, int]] = field(default_factory=list)  # (events done, worker RSS in KiB)
    failed: int = 0
    seconds: float = 0.0

    def at(self, events: int) -> int:
        return next(rss for done, rss in self.samples if done >= events)


def rss_kib(pid: int) -> int:
    """VmRSS of a process (Linux /proc)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _config(scratch: str) -> str:
    """The shipped configuration with the vendors' rates lifted: at the real ones 5,000 intakes take hours, and
    memory does not depend on the pace."""
    import yaml

    from core.settings import DEFAULT_CONFIG
    raw = yaml.safe_load(Path(DEFAULT_CONFIG).read_text(encoding="utf-8"))
    raw["limits"] = {name: {"requests": 10_000, "per_seconds": 1} for name in raw["limits"]}
    path = Path(scratch) / "switchboard.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return str(path)


def _events(http: Any, start: int, count: int) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """`count` events numbered from `start`, by source, as the receiver stores them."""
    found: dict[str, list[tuple[str, str, dict[str, Any]]]] = {"form": [], "aircall": []}
    for n in range(start, start + count):
        if n % CALL_EVERY == CALL_EVERY - 1:
            call = http.post("/_sandbox/aircall/calls", json={"raw_digits": f"+36 1 555 {n:04d}",
                                                               "duration": 40}).json()["call"]
            payload = {"resource": "call", "event": "call.ended", "timestamp": int(time.time()), "data": call}
            found["aircall"].append((f"call.ended:{call['id']}", "call.ended", payload))
        else:
            fields = {"last_name": "Memória", "first_name": f"Mari{n}", "email": f"memoria{n}@example.com",
                      "purpose": "hibabejelentes", "product": "Crossec Norma", "summary": "Nem tudok belépni",
                      "details": "Bejelentkezéskor hibát kapok."}
            found["form"].append((str(uuid.uuid4()), "form", {"form": "website", "fields": fields,
                                                             "attachments": []}))
    return found


def _finished() -> tuple[int, int]:
    """Inbox events the worker is done with, and how many of them failed."""
    from sqlalchemy import func, select

    from core import store
    from core.models import InboxEvent
    with store.session() as s:
        rows = dict(s.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all())
    done = sum(n for status, n in rows.items() if status not in ("pending", "held"))
    return done, sum(n for status, n in rows.items() if status in ("failed", "dead"))


def measure(sandbox: Any, scratch: str) -> Run:
    import httpx

    from bench import _harness as harness
    from core import ingest, store
    from core import settings as settings_module
    from core.settings import SANDBOX_DEFAULTS, Env, load_config
    from switchboard import runtime

    url = f"sqlite:///{scratch}/memory.db"
    env = Env(_env_file=None, database_url=url, switchboard_config=_config(scratch)).with_sandbox(
        sandbox.base_url, smtp_port=sandbox.smtp_port)
    settings_module.use(settings_module.Settings(env=env, config=load_config(env.switchboard_config)))
    store.upgrade(url)
    http = httpx.Client(base_url=sandbox.base_url, timeout=60)
    http.post("/_sandbox/limits", json={name: None for name in sandbox.sandbox.vendors})
    runtime.load_jobs()  # the inbox job, as the receiver's process knows it, so that storing queues it
    environ = {**harness.server_env(env, scratch), "LOG_LEVEL": "WARNING",
               # Sandbox mode for a separate process: the sandbox's credentials, as the process tests give them.
               "GOOGLE_APPLICATION_CREDENTIALS": str(Path(scratch) / "none.json"),
               **{name.upper(): value for name, value in SANDBOX_DEFAULTS.items()}}
    worker = subprocess.Popen([str(Path(sys.executable).with_name("switchboard")), "worker", "--workers",
                               str(WORKER_THREADS)], env=environ,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run, fed, began = Run(), 0, time.perf_counter()
    try:
        while fed < EVENTS:
            for source, events in _events(http, fed, min(BATCH, EVENTS - fed)).items():
                ingest.store_events(source, events)
            fed = min(EVENTS, fed + BATCH)
            deadline = time.monotonic() + 300
            while (done := _finished())[0] < fed:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker stopped with {done[0]} of {fed} events done: "
                                       f"{worker.stderr.read().decode()[-3000:] if worker.stderr else ''}")
                time.sleep(0.1)
            run.failed = done[1]
            if fed % FIRST == 0:
                run.samples.append((fed, rss_kib(worker.pid)))
                print(f"bench memory: {fed} events, worker RSS {run.samples[-1][1] / 1024:.1f} MiB",
                      file=sys.stderr, flush=True)
        run.seconds = time.perf_counter() - began
    finally:
        harness.stop([worker], timeout=40)
        http.close()
        store.dispose()
    return run


def run() -> str:
    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    scratch = tempfile.mkdtemp(prefix="switchboard-bench-")
    os.environ["SWITCHBOARD_DATA_DIR"] = scratch  # huey's queue file, shared with the worker; before core.jobs
    from sandbox.server import start as start_sandbox

    sandbox = start_sandbox("127.0.0.1", 0, 0)
    try:
        measured = measure(sandbox, scratch)
    finally:
        sandbox.stop()
    return report(measured)


def report(run: Run) -> str:
    first, last = run.at(FIRST), run.at(EVENTS)
    ratio = last / first
    lines = [
        "## Worker memory over 5,000 events (`bench/memory.py`)",
        "",
        f"One `switchboard worker` process ({WORKER_THREADS} threads, SQLite, huey on SQLite) against the sandbox; "
        f"{EVENTS:,} events stored as the receiver stores them, in batches of {BATCH} once the worker has done "
        f"the last: website forms (a new customer each: HappyFox ticket, HubSpot contact and ticket, confirmation "
        f"mail) and one in {CALL_EVERY} an Aircall `call.ended`. Vendor rate pacing lifted (memory does not "
        "depend on the pace). RSS is the worker's VmRSS (/proc) after each 500 events.",
        "",
        "| events done | worker RSS MiB |",
        "| ---: | ---: |",
        *[f"| {done:,} | {rss / 1024:.1f} |" for done, rss in run.samples],
        "",
        f"- after {EVENTS:,} against after {FIRST}: {ratio:.3f}x (target <= {TARGET_RATIO:.2f}x): "
        f"{'met' if ratio <= TARGET_RATIO else '**not met**'}",
        f"- {run.failed} events failed; {run.seconds:.0f} s in all (the time is affected by other work on the "
        "machine; the memory figures hardly are)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
