"""A real headless Chromium for the page tests: Debian's (a test tool's own browser download cannot work on these
machines), started as the machine's notes say it must be. Under CI=true a missing browser fails the run."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI
from tests.integration.test_run import Process, free_port

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium's calls home are refused by this machine's closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (scripts/browser.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


# ---------------------------------------------------------------- `make run` as a user runs it

POLL_SECONDS = 30.0


class Running:
    """`switchboard run` on free ports: the service at `base`, its sandbox at `sandbox`."""

    def __init__(self, process: Process, port: int, sandbox_port: int) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{port}"
        self.sandbox = httpx.Client(base_url=f"http://127.0.0.1:{sandbox_port}", timeout=10)

    def state(self, service: str) -> dict[str, Any]:
        return self.sandbox.get("/_sandbox/state").raise_for_status().json()[service]

    def mail(self) -> list[dict[str, Any]]:
        return self.sandbox.get("/_sandbox/mail").raise_for_status().json()

    def settled(self, quiet: float = 1.5) -> None:
        """Until the vendors have heard nothing for `quiet` seconds: the worker's writes and the webhooks they set
        off are all done, so a late duplicate (a second webhook, a retried job) would have shown."""
        answer = self.sandbox.get("/_sandbox/idle", params={"quiet": quiet, "timeout": POLL_SECONDS},
                                  timeout=POLL_SECONDS + 5)
        assert answer.status_code == 200, f"the vendors never went quiet\noutput:\n{self.process.text[-5000:]}"

    def until(self, what: str, check: Callable[[], Any]) -> Any:
        return poll(what, check, lambda: f"state {self.sandbox.get('/_sandbox/state').text[:3000]}\n"
                                         f"mail {self.mail()}\noutput:\n{self.process.text[-5000:]}")


def poll(what: str, check: Callable[[], Any], explain: Callable[[], str], seconds: float = POLL_SECONDS) -> Any:
    """`check()`'s first truthy answer, asked every 0.3 s for at most `seconds`; else an AssertionError saying what
    was never seen, with `explain()` (the state and the processes' output) to tell why."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"never saw {what}; {explain()}")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    port, sandbox_port, smtp_port = free_port(), free_port(), free_port()
    # As on a fresh machine: no vendor credentials in the environment, so `run` starts and wires the sandbox.
    process = Process(["run", "--port", str(port), "--sandbox-port", str(sandbox_port),
                       "--smtp-port", str(smtp_port)], tmp_path)
    try:
        process.wait_for_line("sandbox:")
        process.wait_until_answering(f"http://127.0.0.1:{port}/healthz")
        yield Running(process, port, sandbox_port)
    finally:
        process.kill()
