"""The processes as an operator starts them: `switchboard run` (the embedded default `make run` calls) and
`switchboard serve` (gunicorn, the PaaS `web` process), each a real subprocess on free ports."""
from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SWITCHBOARD

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A `switchboard` subprocess whose merged output is read line by line as it comes."""

    def __init__(self, args: list[str], tmp_path: Path, **env: str) -> None:
        command = list(SWITCHBOARD)
        environment = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
                       "DATABASE_URL": f"sqlite:///{tmp_path}/data/switchboard.db", "PYTHONUNBUFFERED": "1", **env}
        self.proc = subprocess.Popen(command + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     cwd=tmp_path, env=environment)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for_line(self, text: str, timeout: float = START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}; output:\n{self.text}")

    def wait_until_answering(self, url: str, timeout: float = START_TIMEOUT) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"exited with {self.proc.returncode}:\n{self.text}"
            try:
                return httpx.get(url, timeout=2)
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"{url} never answered; output:\n{self.text}")

    def stop(self, signum: int, timeout: float = 15) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=timeout)

    @property
    def text(self) -> str:
        time.sleep(0.1)  # let the reader catch up with the last lines
        return "".join(self.output)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    started: list[Process] = []

    def _start(*args: str, **env: str) -> Process:
        process = Process(list(args), tmp_path, **env)
        started.append(process)
        return process

    yield _start
    for process in started:
        process.kill()


def test_run_serves_everything_in_one_process_and_stops_on_ctrl_c(start, tmp_path):
    port, sandbox_port, smtp_port = free_port(), free_port(), free_port()
    process = start("run", "--port", str(port), "--sandbox-port", str(sandbox_port), "--smtp-port", str(smtp_port))
    line = process.wait_for_line("listening on")
    assert f"http://127.0.0.1:{port}" in line
    process.wait_for_line("sandbox:")  # no vendor credentials: the sandbox runs too, and says where

    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
    ready = httpx.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert httpx.get(f"http://127.0.0.1:{sandbox_port}/", timeout=5).status_code == 200  # the console
    assert (tmp_path / "data" / "switchboard.db").exists()  # migrated on start, SQLite in the data directory
    assert (tmp_path / "data" / "huey.db").exists()

    assert process.stop(signal.SIGINT) == 0
    output = process.text
    assert "stopping..." in output and "stopped." in output
    assert "Traceback" not in output


def test_run_honours_port_and_stops_on_sigterm(start):
    port = free_port()
    process = start("run", "--sandbox-port", str(free_port()), "--smtp-port", str(free_port()), PORT=str(port))
    assert f":{port}" in process.wait_for_line("listening on")
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    assert process.stop(signal.SIGTERM) == 0
    assert "stopped" in process.text


def test_run_with_a_broken_config_exits_2_without_traceback(start, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("forms: [\n", encoding="utf-8")
    process = start("run", "--port", str(free_port()), "--sandbox-port", str(free_port()),
                    "--smtp-port", str(free_port()), SWITCHBOARD_CONFIG=str(bad))
    assert process.proc.wait(timeout=30) == 2
    assert str(bad) in process.text and "Traceback" not in process.text


def test_serve_runs_gunicorn_and_stops_on_sigterm(start):
    port = free_port()
    process = start("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
    health = process.wait_until_answering(f"http://127.0.0.1:{port}/healthz")
    assert health.json() == {"status": "ok"}
    assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
    assert process.stop(signal.SIGTERM) == 0
    # Not on a terminal: every line is JSON, gunicorn's own too.
    records = [json.loads(line) for line in process.text.splitlines() if line.strip()]
    assert any(r["name"] == "gunicorn.error" and f"Listening at: http://127.0.0.1:{port}" in r["message"]
               for r in records)


def test_serve_honours_port_env(start):
    port = free_port()
    process = start("serve", "--host", "127.0.0.1", "--workers", "1", PORT=str(port), WEB_CONCURRENCY="1")
    assert process.wait_until_answering(f"http://127.0.0.1:{port}/healthz").status_code == 200
    assert process.stop(signal.SIGTERM) == 0


def test_worker_runs_no_periodic_jobs_and_stops_on_sigterm(start):
    process = start("worker", "--workers", "1")
    process.wait_for_line("Periodic tasks are disabled")  # only the clock enqueues periodic jobs
    time.sleep(0.5)  # huey installs its signal handlers just after that line
    assert process.stop(signal.SIGTERM) == 0
    assert "Traceback" not in process.text


def test_clock_ticks_and_stops_on_sigterm(start, tmp_path):
    upgrade = start("db", "upgrade")  # the release phase runs before the clock on a PaaS
    assert upgrade.proc.wait(timeout=30) == 0, upgrade.text
    process = start("clock")
    process.wait_for_line("clock started")  # its SIGTERM handler is set before this line
    assert process.stop(signal.SIGTERM) == 0
    output = process.text
    assert "clock stopped" in output
    assert "clock tick failed" not in output and "Traceback" not in output


def test_serve_starts_and_answers_while_database_and_queue_are_down(start):
    port = free_port()
    process = start("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                    DATABASE_URL="postgresql://nobody:pw-not-shown@127.0.0.1:1/none", REDIS_URL="redis://127.0.0.1:1/0")
    assert process.wait_until_answering(f"http://127.0.0.1:{port}/healthz").status_code == 200
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert ready.status_code == 503
    assert set(ready.json()["problems"]) == {"database", "queue"}
    assert "pw-not-shown" not in ready.text
    assert process.stop(signal.SIGTERM) == 0


def test_base_urls_without_credentials_refuse_at_start_and_run_is_unchanged(start, sandbox):
    """`*_BASE_URL` at a running sandbox and no credential: before, a worker started, took the first form and
    left it dead on HappyFox's 401. Now every process refuses at start with one line naming what to set, having
    called nothing; `switchboard run` still starts and wires a sandbox of its own."""
    urls = {f"{vendor}_BASE_URL": sandbox.base_url for vendor in ("HUBSPOT", "HAPPYFOX", "AIRCALL", "GMAIL")}
    commands = {"worker": ["worker"], "clock": ["clock"], "web": ["serve", "--port", str(free_port())],
                "config check": ["config", "check"]}
    started = {name: start(*args, **urls) for name, args in commands.items()}
    for name, process in started.items():
        assert process.proc.wait(timeout=60) == 2, f"{name}:\n{process.text}"
        output = process.text
        assert "Traceback" not in output, output
        [line] = [line for line in output.splitlines() if "set but no vendor credential" in line]
        assert line.startswith("environment: HUBSPOT_BASE_URL, HAPPYFOX_BASE_URL, AIRCALL_BASE_URL, GMAIL_BASE_URL")
        assert "HAPPYFOX_API_KEY, HAPPYFOX_AUTH_CODE" in line and "FORM_WEBHOOK_SECRET" in line
    assert sandbox.calls() == []

    port, sandbox_port = free_port(), free_port()
    run = start("run", "--port", str(port), "--sandbox-port", str(sandbox_port), "--smtp-port", str(free_port()),
                **urls)
    assert f"http://127.0.0.1:{sandbox_port}" in run.wait_for_line("sandbox:")  # its own, as without the URLs
    assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
    assert run.stop(signal.SIGTERM) == 0
