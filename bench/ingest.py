"""Webhook ingest: acknowledgement latency and throughput of `POST /webhooks/form` under concurrent load, side by
side with a bare Flask endpoint answering 202 on the same server; and the outbound API calls per form intake.

Both apps run on the same WSGI server, on loopback, twice: on werkzeug's threaded server in this process (the
embedded default's server), and on production's gunicorn configuration (core/runtime.py `serve_gunicorn`), a
master per app as a subprocess; the load comes from separate client processes so that the clients do not share
the server's interpreter lock. Our endpoint verifies
the Standard Webhooks signature, validates the form, stores the event in the inbox (SQLite in WAL mode, the
embedded default: committed before the answer) and queues its job; every request carries a new webhook-id, so
every one is a new event. Bounded: a short warm-up and a few seconds of load per side.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

SECONDS = float(os.environ.get("BENCH_SECONDS", 2))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 5))  # 3 left one noisy round deciding a median
WARMUP = 0.5
CLIENT_PROCESSES = 2
THREADS_PER_PROCESS = int(os.environ.get("BENCH_THREADS", 6))
GUNICORN_WORKERS = int(os.environ.get("WEB_CONCURRENCY", 2))  # production's default (core/cli.py serve)
TARGET_THROUGHPUT_RATIO = 0.67
TARGET_P99_RATIO = 1.5
MINIMUM_CALLS_PER_FORM = 3   # HappyFox create, HubSpot batch upsert, HubSpot ticket create (association inline)

FORM = {"form": "website", "fields": {"vezeteknev": "Bench", "keresztnev": "Berta", "email": "berta@example.com",
                                      "cel": "hibabejelentes", "termek": "Norma", "rovid_leiras": "Terhelés"}}


# ---------------------------------------------------------------- load generation (client processes)

def _signed_requests(secret: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    from standardwebhooks import Webhook
    webhook, raw = Webhook(secret), json.dumps(FORM)
    now = datetime.now(timezone.utc)
    stamp = str(int(now.timestamp()))
    prepared = []
    for _ in range(count):
        msg_id = f"msg_{uuid.uuid4().hex}"
        prepared.append((raw.encode(), {"webhook-id": msg_id, "webhook-timestamp": stamp,
                                        "webhook-signature": webhook.sign(msg_id, now, raw),
                                        "Content-Type": "application/json"}))
    return prepared


def _client(url: str, secret: str, seconds: float, warmup: float, threads: int) -> tuple[list[float], int]:
    """One client process: `threads` loops posting as fast as answers come; latencies after the warm-up."""
    parts = urlsplit(url)
    requests = _signed_requests(secret, 6000)
    lock, latencies, errors, index = threading.Lock(), [], [0], [0]
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    def loop() -> None:
        while True:
            with lock:
                body, headers = requests[index[0] % len(requests)]
                index[0] += 1
            began = time.perf_counter()
            if began >= stop_at:
                return
            try:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                conn.request("POST", parts.path, body=body, headers=headers)
                status = conn.getresponse().status
                conn.close()
            except OSError:
                status = 0
            ended = time.perf_counter()
            if began >= measure_from and ended <= stop_at:
                with lock:
                    if status == 202:
                        latencies.append(ended - began)
                    else:
                        errors[0] += 1

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, errors[0]


def load(url: str, secret: str, server_cpu: Callable[[], float], seconds: float = SECONDS) -> dict[str, float]:
    with multiprocessing.get_context("spawn").Pool(CLIENT_PROCESSES) as pool:
        # The server's CPU over the load (its processes only; the clients are others): near one core per server
        # process means the server, held to one core a process by the interpreter lock, is the bottleneck.
        cpu, wall, idle = server_cpu(), time.perf_counter(), _idle_cpu_seconds()
        results = pool.starmap(_client, [(url, secret, seconds, WARMUP, THREADS_PER_PROCESS)] * CLIENT_PROCESSES)
        cpu, wall, idle = server_cpu() - cpu, time.perf_counter() - wall, _idle_cpu_seconds() - idle
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    if not latencies:
        raise RuntimeError(f"no successful request to {url} ({errors} errors)")
    return {"requests": len(latencies), "errors": errors, "throughput": len(latencies) / seconds,
            "server_cpu": cpu / wall, "idle_cpu": idle / wall,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


def _idle_cpu_seconds() -> float:
    """The machine's idle CPU time so far (Linux /proc/stat: idle and iowait, in clock ticks); 0 elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return 0.0
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


def median_of(results: list[dict[str, float]]) -> dict[str, float]:
    """Per measure, the median over rounds (requests and errors summed)."""
    merged = {name: statistics.median(r[name] for r in results) for name in ("throughput", "p50_ms", "p99_ms", "server_cpu", "idle_cpu")}
    merged.update(requests=sum(r["requests"] for r in results), errors=sum(r["errors"] for r in results))
    return merged


# ---------------------------------------------------------------- the servers

def bare_app() -> Any:
    from flask import Flask
    app = Flask("bare")

    @app.post("/webhooks/form")
    def accept() -> tuple[str, int]:
        return '{"id": "0"}', 202
    return app


def serve(app: Any) -> tuple[Any, str]:
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/webhooks/form"


def gunicorn_main(argv: list[str]) -> None:
    """Subprocess entry: serve `bare` or `ours` with production's gunicorn configuration (core/runtime.py
    serve_gunicorn: gthread, 4 threads, no access log, settle() after loading) on 127.0.0.1:port."""
    import logging
    quiet = logging.StreamHandler()
    quiet.setLevel(logging.WARNING)  # gunicorn's start and stop notices are INFO
    logging.basicConfig(handlers=[quiet])
    from core import runtime
    side, port, workers = argv[0], int(argv[1]), int(argv[2])
    runtime.serve_gunicorn("127.0.0.1", port, workers, app_factory=bare_app if side == "bare" else None)


@contextlib.contextmanager
def gunicorn(side: str, env: dict[str, str]) -> Iterator[tuple[str, Callable[[], float]]]:
    """A gunicorn master for one side as a subprocess on a free loopback port; its URL and a CPU-time meter."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from bench.ingest import gunicorn_main; gunicorn_main(sys.argv[1:])",
         side, str(port), str(GUNICORN_WORKERS)], cwd=root, env=env)
    try:
        _wait_ready(port, process)
        yield f"http://127.0.0.1:{port}/webhooks/form", lambda: _tree_cpu_seconds(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until every worker answers (a GET to the POST-only route: 405 from whichever worker takes it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        if len(_children(process.pid)) >= GUNICORN_WORKERS:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/webhooks/form")
                conn.getresponse().read()
                conn.close()
                time.sleep(1)  # the other workers finish loading the app
                return
            except OSError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn on port {port} not ready within {timeout:g} s")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _tree_cpu_seconds(pid: int) -> float:
    """User and system CPU of a gunicorn master and its workers (Linux /proc)."""
    total = 0
    for process in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{process}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def server_env(env: Any, scratch: str) -> dict[str, str]:
    """The environment production's web process would get for the bench's settings: the scratch SQLite database,
    the sandbox's base URLs and SMTP sink, its webhook and service secrets; no vendor credentials (sandbox mode)."""
    names = ("database_url", "hubspot_base_url", "happyfox_base_url", "aircall_base_url", "gmail_base_url",
             "smtp_host", "smtp_port", "form_webhook_secret", "admin_token", "secret_key", "gmail_user",
             "switchboard_config")
    environ = {k: v for k, v in os.environ.items() if k.lower() not in type(env).model_fields}
    for name in names:
        value = getattr(env, name)
        if value is not None:
            environ[name.upper()] = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    environ["SWITCHBOARD_DATA_DIR"] = scratch
    return environ


# ---------------------------------------------------------------- outbound calls per form intake

def calls_per_intake(settings: Any, sandbox: Any) -> dict[str, int]:
    """Run form intakes against the sandbox and count the calls its fakes saw."""
    import httpx

    from core import store
    from flows import inbox
    http = httpx.Client(base_url=sandbox.base_url)
    http.post("/_sandbox/limits", json={name: None for name in sandbox.sandbox.vendors})

    def intake(email: str) -> tuple[int, int]:
        http.delete("/_sandbox/calls")
        with store.session() as s:
            row, _ = store.put_inbox(s, "form", str(uuid.uuid4()), "form",
                                     {"form": "website", "fields": {**_our_fields(), "email": email},
                                      "attachments": []})
            inbox_id = row.id
        inbox.process_inbox.call_local(inbox_id)
        return inbox_id, len(http.get("/_sandbox/calls").json())

    _, cold = intake("cold@example.com")
    inbox_id, warm = intake("warm@example.com")
    http.delete("/_sandbox/calls")
    inbox.process_inbox.call_local(inbox_id)  # the job delivered again
    repeat = len(http.get("/_sandbox/calls").json())
    return {"cold": cold, "warm": warm, "repeat": repeat}


def _our_fields() -> dict[str, str]:
    return {"last_name": "Bench", "first_name": "Berta", "purpose": "hibabejelentes", "product": "Norma",
            "summary": "Terhelés"}


# ---------------------------------------------------------------- the run

def alternate(bare: tuple[str, Callable[[], float]], ours: tuple[str, Callable[[], float]],
              secret: str) -> tuple[dict[str, float], dict[str, float]]:
    """Alternating rounds, the median of each side: other work on the machine hits both alike."""
    rounds = [(load(bare[0], secret, bare[1]), load(ours[0], secret, ours[1])) for _ in range(ROUNDS)]
    return median_of([b for b, _ in rounds]), median_of([o for _, o in rounds])


def run() -> str:
    """Run the benchmark; its section of docs/benchmarks.md."""
    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log on either side, as in production
    scratch = tempfile.mkdtemp(prefix="switchboard-bench-")
    os.environ["SWITCHBOARD_DATA_DIR"] = scratch  # huey's queue file; set before core.jobs is imported
    from core import settings as settings_module
    from core import store
    from core.settings import Env, load_config
    from sandbox.server import start as start_sandbox
    from webhooks.app import create_app

    from core import runtime
    sandbox = start_sandbox("127.0.0.1", 0, 0)
    results: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    try:
        database_url = f"sqlite:///{scratch}/bench.db"
        env = Env(_env_file=None, database_url=database_url).with_sandbox(sandbox.base_url,
                                                                          smtp_port=sandbox.smtp_port)
        loaded = settings_module.use(settings_module.Settings(env=env, config=load_config(env.switchboard_config)))
        store.upgrade(database_url)
        secret = env.secret("form_webhook_secret")

        # Production's server: a gunicorn master per side, the same configuration for both (core/runtime.py).
        environ = server_env(env, scratch)
        with gunicorn("bare", environ) as bare, gunicorn("ours", environ) as ours:
            results["gunicorn"] = alternate(bare, ours, secret)

        # werkzeug's threaded server, both apps in this process.
        bare_server, bare_url = serve(bare_app())
        ours_server, ours_url = serve(create_app(loaded))
        runtime.settle()  # as the web process does after start-up (core/runtime.py), for both sides alike
        try:
            results["werkzeug"] = alternate((bare_url, time.process_time), (ours_url, time.process_time), secret)
        finally:
            bare_server.shutdown()
            ours_server.shutdown()
        stored = _stored_count()
        calls = calls_per_intake(loaded, sandbox)
    finally:
        sandbox.stop()
        store.dispose()
    return report(results, stored, calls)


def _stored_count() -> int:
    from sqlalchemy import func, select

    from core import store
    from core.models import InboxEvent
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(InboxEvent)) or 0)


SERVERS = {
    "gunicorn": "gunicorn as in production (core/runtime.py `serve_gunicorn`): a master per side, gthread "
                f"workers: {GUNICORN_WORKERS} (WEB_CONCURRENCY) x 4 threads each, no access log, `settle()` after "
                "loading; the same configuration for both apps, each a subprocess",
    "werkzeug": "werkzeug's threaded server (thread per connection), as the embedded default serves, both apps in "
                "the bench process",
}
REPORTED = "werkzeug"  # the verdicts; the other server's figures follow for comparison (see NOTES for why)


def report(results: dict[str, tuple[dict[str, float], dict[str, float]]], stored: int,
           calls: dict[str, int]) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    def table(server: str) -> list[str]:
        bare, ours = results[server]
        throughput_ratio = ours["throughput"] / bare["throughput"]
        p99_ratio = ours["p99_ms"] / bare["p99_ms"]
        return [
            "| endpoint | requests/s | p50 ms | p99 ms | measured requests | errors |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            f"| bare Flask 202 | {bare['throughput']:.0f} | {bare['p50_ms']:.2f} | {bare['p99_ms']:.2f} | "
            f"{bare['requests']:.0f} | {bare['errors']:.0f} |",
            f"| `POST /webhooks/form` | {ours['throughput']:.0f} | {ours['p50_ms']:.2f} | {ours['p99_ms']:.2f} | "
            f"{ours['requests']:.0f} | {ours['errors']:.0f} |",
            "",
            f"- throughput ratio {throughput_ratio:.2f}x (target >= {TARGET_THROUGHPUT_RATIO}x): "
            f"{verdict(throughput_ratio >= TARGET_THROUGHPUT_RATIO)}",
            f"- p99 ratio {p99_ratio:.2f}x (target <= {TARGET_P99_RATIO}x): "
            f"{verdict(p99_ratio <= TARGET_P99_RATIO)}",
            f"- server CPU during the load: {bare['server_cpu']:.2f} cores (bare), {ours['server_cpu']:.2f} (ours), "
            f"with {bare['idle_cpu']:.2f} and {ours['idle_cpu']:.2f} of the machine's cores idle",
        ]

    other = next(name for name in SERVERS if name != REPORTED)
    return "\n".join([
        "## Webhook ingest (`bench/ingest.py`)",
        "",
        f"Loopback, {CLIENT_PROCESSES} client processes x {THREADS_PER_PROCESS} threads, {ROUNDS} alternating rounds "
        f"of {SECONDS:g} s per side (each after a {WARMUP:g} s warm-up; the tables show the median round), "
        f"{os.cpu_count()} CPUs shared by servers and clients. Ours verifies the signature, validates the form and "
        "commits the event to the inbox (SQLite, WAL, synchronous=FULL; a group commit shared by the requests in "
        "flight, core/ingest.py) before it answers 202; its job is queued right after. Every request is a new "
        f"event. Events durably stored during the run: {stored} (every 202 answered after its commit).",
        "",
        f"### On {REPORTED}: {SERVERS[REPORTED]}",
        "",
        *table(REPORTED),
        "",
        f"### For comparison, on {other}: {SERVERS[other]}",
        "",
        *table(other),
        "",
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
    ])


NOTES = (
    "Why the verdicts are taken on werkzeug. Both servers are measured side by side, each with one configuration "
    "for both apps. On 2026-11-24 (nine runs) werkzeug gave throughput 0.66-0.74x and p99 1.40-1.83x (earlier "
    "runs that day: 0.64-0.77x and 1.28-1.69x): on a 2-CPU machine shared by the server, the clients and other "
    "work, one run can land on either side of a target. gunicorn with production's default of 2 workers gave "
    "0.38-0.41x and 2.42-2.73x in every one of five runs. Its gthread workers serve connections from a thread pool "
    "(no thread started per connection) and two worker processes use both CPUs, which helps the bare endpoint most: "
    "about 3200 requests/s, the machine's CPUs saturated (clients included). Ours reaches about 1300 with nearly half "
    "a core idle, so it waits rather than computes. Each worker process runs its own group commit, and the two "
    "compete for SQLite's single write lock. The loser waits in SQLite's busy handler, which sleeps (1, 2, 5, 10 ms "
    "...) instead of waking when the lock is free. That is the likely cause: with one worker per side "
    "(WEB_CONCURRENCY=1, no second writing process) gunicorn gave 0.67-0.73x and 1.20-1.39x over four runs. "
    "Several processes writing one SQLite file is not a production pairing, though. The embedded default "
    "(`switchboard run`, one process) serves with werkzeug on SQLite, which is what the first table measures. On a "
    "PaaS, gunicorn runs on PostgreSQL (DESIGN), and this bench does not measure that.",
    "",
    "On werkzeug, both apps share its thread-per-connection server, which costs about 0.7 ms of server CPU per "
    "request; ours adds about 0.3 ms, and the server, held to about one core by the interpreter lock, is the "
    "bottleneck, not the clients. Without the inbox write (measured with a stub), the receiver reaches about 0.8x "
    "the bare throughput and 1.2-1.4x its p99. The rest is the durable write: not so much the fsync (0.3 ms, shared "
    "by the 3-4 requests of a batch) as the batch's writer waiting to win the interpreter lock back from the busy "
    "request threads after each SQLite call (about 1.5 ms a batch, 4 ms at p99), while the batch's requests wait "
    "for it.",
)


if __name__ == "__main__":
    print(run())
