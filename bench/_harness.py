"""What the ingest benchmark measures with: signed load from wrk, the servers it runs both apps on,
and the statistics of alternating rounds. No verdicts here (bench/ingest.py)."""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

SECONDS = int(os.environ.get("BENCH_SECONDS", 2))  # wrk takes whole seconds
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 24))  # for a verdict: 5 left it to a few noisy rounds
WARMUP = 1
CONNECTIONS = (32, 64)  # wrk's keep-alive connections: the first for the verdict
GUNICORN_WORKERS = int(os.environ.get("WEB_CONCURRENCY", 2))  # production's default (switchboard/cli.py serve)

FORM = {"form": "website", "fields": {"vezeteknev": "Bench", "keresztnev": "Berta", "email": "berta@example.com",
                                      "cel": "hibabejelentes", "termek": "Crossec Norma", "rovid_leiras": "Terhelés"}}


# ---------------------------------------------------------------- load generation (wrk)

WRK_THREADS = 2
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "signed.lua")
MOST_PER_SECOND = 16000  # more requests a second than either side answers here: every request is a new delivery


def _write_deliveries(secret: str, folder: str, per_thread: int) -> tuple[str, str]:
    """Signed deliveries for one wrk run: the body file and the prefix of one file of signatures per wrk thread."""
    from standardwebhooks import Webhook
    webhook, raw = Webhook(secret), json.dumps(FORM)
    now = datetime.now(timezone.utc)
    stamp = str(int(now.timestamp()))
    body = os.path.join(folder, "body.json")
    with open(body, "w", encoding="utf-8") as f:
        f.write(raw)
    prefix = os.path.join(folder, "signatures")
    for thread in range(WRK_THREADS):
        with open(f"{prefix}.{thread}", "w", encoding="ascii") as f:
            for _ in range(per_thread):
                msg_id = f"msg_{uuid.uuid4().hex}"
                f.write(f"{msg_id} {stamp} {webhook.sign(msg_id, now, raw)}\n")
    return body, prefix


def _wrk(url: str, secret: str, seconds: float, connections: int) -> dict[str, Any]:
    """One wrk run of `seconds` over `connections` keep-alive connections; its summary (bench/signed.lua)."""
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is missing (scripts/bench-deps.sh installs it; Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
        body, prefix = _write_deliveries(secret, folder, int(MOST_PER_SECOND * seconds / WRK_THREADS) + 100)
        done = subprocess.run(["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
                               "-s", SCRIPT, url, "--", body, prefix],
                              capture_output=True, text=True, check=True)
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if summary["repeated"]:
        raise RuntimeError(f"{url} answered more than {MOST_PER_SECOND} requests/s: raise MOST_PER_SECOND")
    return summary


@dataclass
class Round:
    """One side's load for one round (wrk's figures of the measured run, after a warm-up run)."""
    throughput: float  # requests answered per second
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int        # socket errors and answers other than 2xx
    accepted: int      # every 2xx answered, the warm-up's included (all are new deliveries: 202)
    server_cpu: float  # cores the server's processes used during the load
    idle_cpu: float    # cores of the machine left idle


def load(url: str, secret: str, server_cpu: Callable[[], float], connections: int) -> Round:
    warm = _wrk(url, secret, WARMUP, connections)
    cpu, wall, idle = server_cpu(), time.perf_counter(), _idle_cpu_seconds()
    run = _wrk(url, secret, SECONDS, connections)
    cpu, wall, idle = server_cpu() - cpu, time.perf_counter() - wall, _idle_cpu_seconds() - idle
    errors = run["socket_errors"] + run["non_2xx"]
    if run["requests"] <= errors:
        raise RuntimeError(f"no successful request to {url}")
    accepted = sum(r["requests"] - r["non_2xx"] - r["socket_errors"] for r in (warm, run))
    return Round(run["requests"] / run["seconds"], run["p50_ms"], run["p99_ms"], run["requests"], errors, accepted,
                 cpu / wall, idle / wall)


def _idle_cpu_seconds() -> float:
    """The machine's idle CPU time so far (Linux /proc/stat: idle and iowait, in clock ticks); 0 elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return 0.0
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


Side = tuple[str, Callable[[], float]]  # a server's URL and its CPU meter


def alternate(bare: Side, ours: Side, secret: str, rounds: int, connections: int) -> list[tuple[Round, Round]]:
    """Rounds alternating between the two sides (A B A B), so that whatever else the machine does hits both alike."""
    return [(load(bare[0], secret, bare[1], connections), load(ours[0], secret, ours[1], connections))
            for _ in range(rounds)]


# ---------------------------------------------------------------- statistics

@dataclass
class SideSummary:
    """One side over the rounds: the median round's figures (wrk reports percentiles per run, not latencies)."""
    throughput: float  # requests/s
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    accepted: int
    server_cpu: float
    idle_cpu: float

    @classmethod
    def of(cls, rounds: list[Round]) -> "SideSummary":
        def median(name: str) -> float:
            return float(statistics.median(getattr(r, name) for r in rounds))
        return cls(throughput=median("throughput"), p50_ms=median("p50_ms"), p99_ms=median("p99_ms"),
                   requests=sum(r.requests for r in rounds), errors=sum(r.errors for r in rounds),
                   accepted=sum(r.accepted for r in rounds), server_cpu=median("server_cpu"),
                   idle_cpu=median("idle_cpu"))


@dataclass
class Comparison:
    """Ours against the bare endpoint: the medians of the rounds' ratios, each round paired with the bare round just
    before it, for throughput and for p99."""
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
        per_round_p99 = [o.p99_ms / b.p99_ms for b, o in rounds]
        return cls(bare, ours, statistics.median(per_round), statistics.median(per_round_p99), per_round,
                   per_round_p99)


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
        [sys.executable, "-c", "from switchboard.launch import patch_for_gevent; patch_for_gevent(); "
         "import sys; from bench._harness import gunicorn_main; gunicorn_main(sys.argv[1:])",
         side, str(port), str(GUNICORN_WORKERS)], cwd=root, env=env)
    try:
        _wait_ready(port, process)
        yield f"http://127.0.0.1:{port}/webhooks/form", lambda: _tree_cpu_seconds(process.pid)
    finally:
        stop([process], timeout=15)


def stop(processes: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """Terminate the processes together, then wait for each; kill one that outlives `timeout`."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
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
    base URLs and SMTP sink and the credentials it accepts (base URLs without credentials refuse to start), its
    webhook and service secrets."""
    from core.settings import SANDBOX_DEFAULTS
    names = ("database_url", "hubspot_base_url", "happyfox_base_url", "aircall_base_url", "gmail_base_url",
             "smtp_host", "smtp_port", "form_webhook_secret", "admin_token", "secret_key", "switchboard_config",
             *SANDBOX_DEFAULTS)
    environ = {k: v for k, v in os.environ.items() if k.lower() not in type(env).model_fields}
    for name in names:
        value = getattr(env, name)
        if value is not None:
            environ[name.upper()] = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    environ["SWITCHBOARD_DATA_DIR"] = scratch
    environ["GOOGLE_APPLICATION_CREDENTIALS"] = google_key(scratch)
    return environ


def google_key(scratch: str) -> str:
    """The service account key file the bench's sandbox is started with (it writes the file when missing)."""
    return os.path.join(scratch, "google-key.json")
