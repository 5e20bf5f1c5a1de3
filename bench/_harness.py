"""What the ingest benchmark measures with: signed load from client processes, the servers it runs both apps on,
and the statistics of alternating rounds. No verdicts here (bench/ingest.py)."""
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
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

SECONDS = float(os.environ.get("BENCH_SECONDS", 2))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 24))  # for a verdict: 5 left it to a few noisy rounds
WARMUP = 0.5
CLIENT_PROCESSES = 2
THREADS_PER_PROCESS = int(os.environ.get("BENCH_THREADS", 6))
GUNICORN_WORKERS = int(os.environ.get("WEB_CONCURRENCY", 2))  # production's default (switchboard/cli.py serve)

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


def _client(url: str, secret: str, seconds: float, warmup: float, threads: int) -> tuple[list[float], int, int]:
    """One client process: `threads` loops posting as fast as answers come, a new connection per request (as
    webhook senders do). Returns the latencies measured after the warm-up, the errors among them, and every 202
    answered (warm-up included), which the caller checks against the rows stored."""
    parts = urlsplit(url)
    requests = _signed_requests(secret, 10000)  # more than a side answers in a round: no repeats
    lock, latencies, errors, accepted, index = threading.Lock(), [], [0], [0], [0]
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
            with lock:
                accepted[0] += status == 202
                if began >= measure_from and ended <= stop_at:
                    if status == 202:
                        latencies.append(ended - began)
                    else:
                        errors[0] += 1

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, errors[0], accepted[0]


@dataclass
class Round:
    """One side's load for one round."""
    latencies: list[float]
    errors: int
    accepted: int
    server_cpu: float  # cores the server's processes used during the load
    idle_cpu: float    # cores of the machine left idle

    @property
    def throughput(self) -> float:
        return len(self.latencies) / SECONDS


def load(url: str, secret: str, server_cpu: Callable[[], float]) -> Round:
    with multiprocessing.get_context("spawn").Pool(CLIENT_PROCESSES) as pool:
        cpu, wall, idle = server_cpu(), time.perf_counter(), _idle_cpu_seconds()
        results = pool.starmap(_client, [(url, secret, SECONDS, WARMUP, THREADS_PER_PROCESS)] * CLIENT_PROCESSES)
        cpu, wall, idle = server_cpu() - cpu, time.perf_counter() - wall, _idle_cpu_seconds() - idle
    latencies = [x for lat, _, _ in results for x in lat]
    if not latencies:
        raise RuntimeError(f"no successful request to {url}")
    return Round(latencies, sum(e for _, e, _ in results), sum(a for _, _, a in results), cpu / wall, idle / wall)


def _idle_cpu_seconds() -> float:
    """The machine's idle CPU time so far (Linux /proc/stat: idle and iowait, in clock ticks); 0 elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return 0.0
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


Side = tuple[str, Callable[[], float]]  # a server's URL and its CPU meter


def alternate(bare: Side, ours: Side, secret: str, rounds: int = ROUNDS) -> list[tuple[Round, Round]]:
    """Rounds alternating between the two sides, so that whatever else the machine does hits both alike."""
    return [(load(bare[0], secret, bare[1]), load(ours[0], secret, ours[1])) for _ in range(rounds)]


# ---------------------------------------------------------------- statistics

def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@dataclass
class SideSummary:
    throughput: float  # requests/s: the median round
    p50_ms: float      # over every measured request of every round
    p99_ms: float
    requests: int
    errors: int
    accepted: int
    server_cpu: float
    idle_cpu: float

    @classmethod
    def of(cls, rounds: list[Round]) -> "SideSummary":
        pooled = [x for r in rounds for x in r.latencies]
        return cls(throughput=statistics.median(r.throughput for r in rounds),
                   p50_ms=_percentile(pooled, 0.50) * 1000, p99_ms=_percentile(pooled, 0.99) * 1000,
                   requests=len(pooled), errors=sum(r.errors for r in rounds),
                   accepted=sum(r.accepted for r in rounds),
                   server_cpu=statistics.median(r.server_cpu for r in rounds),
                   idle_cpu=statistics.median(r.idle_cpu for r in rounds))


@dataclass
class Comparison:
    """Ours against the bare endpoint. Throughput: the median of the rounds' ratios (each round paired with the
    bare round just before it). Latency: percentiles of every acknowledgement of the run, pooled per side, as a
    sender sees them over the whole load."""
    bare: SideSummary
    ours: SideSummary
    throughput_ratio: float
    p99_ratio: float
    round_throughput_ratios: list[float] = field(default_factory=list)
    round_p99_ratios: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, rounds: list[tuple[Round, Round]]) -> "Comparison":
        bare, ours = SideSummary.of([b for b, _ in rounds]), SideSummary.of([o for _, o in rounds])
        per_round = [o.throughput / b.throughput for b, o in rounds]
        per_round_p99 = [_percentile(o.latencies, 0.99) / _percentile(b.latencies, 0.99) for b, o in rounds]
        return cls(bare, ours, statistics.median(per_round), ours.p99_ms / bare.p99_ms, per_round, per_round_p99)


# ---------------------------------------------------------------- the servers

def bare_app() -> Any:
    from flask import Flask
    app = Flask("bare")

    @app.post("/webhooks/form")
    def accept() -> tuple[str, int]:
        return '{"id": "0"}', 202
    return app


def serve_werkzeug(app: Any) -> tuple[Any, str]:
    """werkzeug's threaded server in this process, as `switchboard run` serves (switchboard/runtime.py)."""
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/webhooks/form"


def gunicorn_main(argv: list[str]) -> None:
    """Subprocess entry: serve `bare` or `ours` with production's gunicorn configuration (switchboard/runtime.py
    serve_gunicorn) on 127.0.0.1:port."""
    import logging
    quiet = logging.StreamHandler()
    quiet.setLevel(logging.WARNING)  # gunicorn's start and stop notices are INFO
    logging.basicConfig(handlers=[quiet])
    from switchboard import runtime
    side, port, workers = argv[0], int(argv[1]), int(argv[2])
    runtime.serve_gunicorn("127.0.0.1", port, workers, app_factory=bare_app if side == "bare" else None)


@contextlib.contextmanager
def gunicorn(side: str, env: dict[str, str]) -> Iterator[Side]:
    """A gunicorn master for one side as a subprocess on a free loopback port; its URL and a CPU-time meter."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from bench._harness import gunicorn_main; gunicorn_main(sys.argv[1:])",
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
    """The environment production's web process would get for the bench's settings: its database, the sandbox's
    base URLs and SMTP sink, its webhook and service secrets; no vendor credentials (sandbox mode)."""
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
