"""Webhook ingest: acknowledgement latency and throughput of `POST /webhooks/form` under concurrent load, side by
side with a bare Flask endpoint answering 202 on the same server; and the outbound API calls per form intake.

Our endpoint verifies the Standard Webhooks signature, validates the form, commits the event to the inbox before it
answers 202 and queues its job; every request carries a new webhook-id, so every one is a new event. Both apps run
on one server configuration at a time, in three setups: the embedded default (`switchboard run`: werkzeug and
SQLite in one process), which the verdicts are taken on, and for comparison production's gunicorn
(`switchboard serve`) on SQLite and on PostgreSQL. The load comes from separate client processes, so that the
clients do not share a server's interpreter lock; rounds alternate between the two sides (bench/_harness.py).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench import _harness as harness
from bench._harness import Comparison

TARGET_THROUGHPUT_RATIO = 0.67
TARGET_P99_RATIO = 1.5
MINIMUM_CALLS_PER_FORM = 3   # HappyFox create, HubSpot batch upsert, HubSpot ticket create (association inline)
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass(frozen=True)
class Setup:
    server: str     # werkzeug | gunicorn
    database: str   # sqlite | postgresql
    title: str
    rounds: int = max(2, harness.ROUNDS // 3)  # a comparison needs fewer than the verdict


SETUPS = (
    Setup("werkzeug", "sqlite", "the embedded default (`switchboard run`): werkzeug's threaded server (a thread per "
          "connection) and SQLite (WAL, synchronous=FULL), both apps in the bench process", rounds=harness.ROUNDS),
    Setup("gunicorn", "sqlite", "production's server (`switchboard serve`, switchboard/runtime.py) on SQLite: a gunicorn "
          f"master per side, {harness.GUNICORN_WORKERS} (WEB_CONCURRENCY) gthread workers x {{threads}} threads, "
          "no access log; the same configuration for both apps"),
    Setup("gunicorn", "postgresql", "production's server as a PaaS runs it, on the local PostgreSQL "
          "(fsync on, synchronous_commit on); otherwise as above"),
)
VERDICT = SETUPS[0]  # why: NOTES


@contextlib.contextmanager
def database(kind: str, scratch: str, name: str) -> Iterator[str | None]:
    """A new, empty database of `kind` for one setup; None when PostgreSQL cannot be reached."""
    if kind == "sqlite":
        yield f"sqlite:///{scratch}/{name}.db"
        return
    import psycopg
    database_name = f"switchboard_bench_{os.getpid()}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        yield None
        return
    with admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database_name}")
        admin.execute(f"CREATE DATABASE {database_name}")
        try:
            yield PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + \
                f"/{database_name}"
        finally:
            from core import store
            store.dispose()
            admin.execute(f"DROP DATABASE IF EXISTS {database_name} WITH (FORCE)")


@dataclass
class Measured:
    comparison: Comparison
    stored: int  # inbox rows afterwards: at least every 202 ours answered


def measure(setup: Setup, url: str, sandbox: Any, scratch: str) -> Measured:
    from core import store
    from switchboard import runtime
    from core import settings as settings_module
    from core.settings import Env, load_config
    from webhooks.app import create_app

    env = Env(_env_file=None, database_url=url).with_sandbox(sandbox.base_url, smtp_port=sandbox.smtp_port)
    loaded = settings_module.use(settings_module.Settings(env=env, config=load_config(env.switchboard_config)))
    store.upgrade(url)
    secret = env.secret("form_webhook_secret")
    if setup.server == "gunicorn":
        environ = harness.server_env(env, scratch)
        with harness.gunicorn("bare", environ) as bare, harness.gunicorn("ours", environ) as ours:
            rounds = harness.alternate(bare, ours, secret, setup.rounds)
    else:
        bare_server, bare_url = harness.serve_werkzeug(harness.bare_app())
        ours_server, ours_url = harness.serve_werkzeug(create_app(loaded))
        runtime.settle()  # as the web process does after start-up, for both sides alike
        try:
            rounds = harness.alternate((bare_url, time.process_time), (ours_url, time.process_time), secret,
                                       setup.rounds)
        finally:
            bare_server.shutdown()
            ours_server.shutdown()
    return Measured(Comparison.of(rounds), _stored_count())


def _stored_count() -> int:
    from sqlalchemy import func, select

    from core import store
    from core.models import InboxEvent
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(InboxEvent)) or 0)


# ---------------------------------------------------------------- outbound calls per form intake

def calls_per_intake(sandbox: Any, scratch: str) -> dict[str, int]:
    """Run form intakes against the sandbox and count the calls its fakes saw."""
    import httpx

    from core import settings as settings_module
    from core import store
    from core.settings import Env, load_config
    from flows import dispatch
    url = f"sqlite:///{scratch}/calls.db"
    env = Env(_env_file=None, database_url=url).with_sandbox(sandbox.base_url, smtp_port=sandbox.smtp_port)
    settings_module.use(settings_module.Settings(env=env, config=load_config(env.switchboard_config)))
    store.upgrade(url)
    http = httpx.Client(base_url=sandbox.base_url)
    http.post("/_sandbox/limits", json={name: None for name in sandbox.sandbox.vendors})

    def intake(email: str) -> tuple[int, int]:
        http.delete("/_sandbox/calls")
        with store.session() as s:
            row, _ = store.put_inbox(s, "form", str(uuid.uuid4()), "form",
                                     {"form": "website", "fields": {**_our_fields(), "email": email},
                                      "attachments": []})
            inbox_id = row.id
        dispatch.process_inbox.call_local(inbox_id)
        return inbox_id, len(http.get("/_sandbox/calls").json())

    _, cold = intake("cold@example.com")
    inbox_id, warm = intake("warm@example.com")
    http.delete("/_sandbox/calls")
    dispatch.process_inbox.call_local(inbox_id)  # the job delivered again
    repeat = len(http.get("/_sandbox/calls").json())
    return {"cold": cold, "warm": warm, "repeat": repeat}


def _our_fields() -> dict[str, str]:
    return {"last_name": "Bench", "first_name": "Berta", "purpose": "hibabejelentes", "product": "Norma",
            "summary": "Terhelés"}


# ---------------------------------------------------------------- the run

def run() -> str:
    """Run the benchmark; its section of docs/benchmarks.md."""
    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log on either side, as in production
    scratch = tempfile.mkdtemp(prefix="switchboard-bench-")
    os.environ["SWITCHBOARD_DATA_DIR"] = scratch  # huey's queue file; set before core.jobs is imported
    from core import store
    from sandbox.server import start as start_sandbox

    sandbox = start_sandbox("127.0.0.1", 0, 0)
    results: dict[Setup, Measured | None] = {}
    try:
        for number, setup in enumerate(SETUPS):
            with database(setup.database, scratch, f"ingest{number}") as url:
                results[setup] = measure(setup, url, sandbox, scratch) if url else None
            store.dispose()
        calls = calls_per_intake(sandbox, scratch)
    finally:
        sandbox.stop()
        store.dispose()
    return report(results, calls)


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _table(measured: Measured) -> list[str]:
    c = measured.comparison
    bare, ours = c.bare, c.ours

    def row(name: str, side: Any) -> str:
        return (f"| {name} | {side.throughput:.0f} | {side.p50_ms:.2f} | {side.p99_ms:.2f} | {side.requests} | "
                f"{side.errors} |")

    spread = (f"rounds {min(c.round_throughput_ratios):.2f}-{max(c.round_throughput_ratios):.2f}x; "
              f"p99 per round {min(c.round_p99_ratios):.2f}-{max(c.round_p99_ratios):.2f}x")
    return [
        "| endpoint | requests/s | p50 ms | p99 ms | measured requests | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        row("bare Flask 202", bare),
        row("`POST /webhooks/form`", ours),
        "",
        f"- throughput ratio {c.throughput_ratio:.2f}x (target >= {TARGET_THROUGHPUT_RATIO}x): "
        f"{_verdict(c.throughput_ratio >= TARGET_THROUGHPUT_RATIO)}",
        f"- p99 ratio {c.p99_ratio:.2f}x (target <= {TARGET_P99_RATIO}x): {_verdict(c.p99_ratio <= TARGET_P99_RATIO)}",
        f"- spread: {spread}",
        f"- durable before the answer: {ours.accepted} events acknowledged with 202, {measured.stored} in the inbox "
        f"afterwards ({'none lost' if measured.stored >= ours.accepted else '**some lost**'})",
        f"- server CPU during the load: {bare.server_cpu:.2f} cores (bare), {ours.server_cpu:.2f} (ours), with "
        f"{bare.idle_cpu:.2f} and {ours.idle_cpu:.2f} of the machine's cores idle",
    ]


def report(results: dict[Setup, Measured | None], calls: dict[str, int]) -> str:
    from switchboard import runtime  # here: importing core before run() set SWITCHBOARD_DATA_DIR would fix huey's file
    lines = [
        "## Webhook ingest (`bench/ingest.py`)",
        "",
        f"Loopback, {harness.CLIENT_PROCESSES} client processes x {harness.THREADS_PER_PROCESS} threads, a new "
        f"connection per request; rounds of {harness.SECONDS:g} s per side, alternating (each after a "
        f"{harness.WARMUP:g} s warm-up), {VERDICT.rounds} for the verdict and {SETUPS[1].rounds} for each comparison; "
        f"{os.cpu_count()} CPUs shared by servers, clients and the database. Ours "
        "verifies the signature, validates the form and commits the event to the inbox (a group commit shared by the "
        "requests in flight, core/ingest.py) before it answers 202. Requests/s is the median round; the throughput "
        "ratio is the median of the rounds' ratios, each round paired with the bare round before it; p50 and p99 "
        "are over every measured request of the run, as the senders saw them.",
        "",
    ]
    for setup in SETUPS:
        measured = results.get(setup)
        heading = "Verdict" if setup == VERDICT else "For comparison"
        title = setup.title.format(threads=runtime.THREADS)  # switchboard/runtime.py's own figure, never a copy
        lines += [f"### {heading}: {setup.server} on {setup.database}", "", title[0].upper() + title[1:] + ".", ""]
        lines += _table(measured) if measured else ["Not measured: PostgreSQL could not be reached."]
        lines.append("")
    lines += [
        *NOTES,
        "",
        "### Outbound API calls per form intake",
        "",
        "| case | calls | minimum the vendor APIs allow |",
        "| --- | ---: | ---: |",
        f"| first intake of a process (includes the one-off HappyFox custom-field discovery) | {calls['cold']} | "
        f"{MINIMUM_CALLS_PER_FORM} |",
        f"| every later intake | {calls['warm']} | {MINIMUM_CALLS_PER_FORM} |",
        f"| the same job delivered again | {calls['repeat']} | 0 |",
        "",
        "The minimum: HappyFox ticket create, HubSpot contact batch upsert, HubSpot ticket create with its "
        "association to the contact inline. The confirmation mail goes over SMTP and is not an API call.",
    ]
    return "\n".join(lines)


NOTES = (
    "Why the verdicts are taken on the embedded default. It is the one setup where both apps share one server "
    "process and the load is that process's to carry: werkzeug's server holds it to about one core (the "
    "interpreter lock), with over half a core of the machine idle, so the ratio is the bare endpoint's cost per "
    "request against ours. Under gunicorn the bare endpoint's two worker processes and the clients saturate both "
    "CPUs (0.02 cores idle), and whatever ours adds, the database server's own work included on PostgreSQL, comes "
    "out of CPU the machine does not have; on a PaaS the database runs elsewhere and web dynos scale out.",
    "",
    "Where ours' cost goes (2026-12-01, werkzeug, measured by swapping one part at a time): the bare endpoint costs "
    "about 550 µs of server CPU a request, ours about 800. A stub in place of the inbox write gives 0.87x (signature, "
    "validation and the answer: about 80 µs); a stub write that returns at once, with the group commit around it, "
    "0.80x; one that sleeps as long as the fsync, 0.74x; the real SQLite write, 0.72x. The costly part is not the "
    "fsync (0.15 ms, shared by the 2-3 requests of a batch) but that a request waits at all: its thread hands the "
    "interpreter lock to another and must win it back, about five context switches (rusage: 30 a request against 19 "
    "with the stub), and on this VM a switch costs about as much CPU as the insert.",
    "",
    "p99 follows throughput. With a fixed number of client connections, latency is connections over throughput, so "
    "the p99 ratio is the inverse of the throughput ratio times how much wider ours' tail is. At 0.70-0.72x "
    "throughput that leaves p99 little room under 1.5, and the tail was wider by the WAL checkpoints SQLite ran "
    "inside a batch's commit: five runs of 24 rounds gave p99 1.47-1.54x (mean 1.49). With checkpoints on their own "
    "thread (core/ingest.py), seven runs gave p99 1.36-1.47x (mean 1.42) and throughput 0.70-0.72x: both targets "
    "met in each, by 0.03 at the least.",
    "",
    "Tried and measured, no better: the interpreter's switch interval from 0.5 to 100 ms; an INSERT without "
    "RETURNING (fewer releases of the interpreter lock); pinning the process to one CPU; Python 3.12; 6, 12 or 24 "
    "client connections (the ratio does not move); the inbox written by a separate writer process over a socket "
    "(0.76x, p99 1.42x: not worth a second process). A faster embedded server makes the ratio worse, not better: "
    "under waitress the bare endpoint answers 3000 requests/s and ours 1780 (0.59x). On gunicorn with two workers "
    "on SQLite, an flock between the workers' group commits (core/ingest.py) took ours from 0.37x to 0.49x and p99 "
    "from 2.7x to 1.5x.",
)


if __name__ == "__main__":
    print(run())
