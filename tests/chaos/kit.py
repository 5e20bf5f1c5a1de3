"""What the chaos tests share: outages of real dependencies. A scratch PostgreSQL database that refuses every
connection for a while (its backends terminated, as a restart would), and a private Redis server of the test's
own that is killed with SIGKILL and started again on the same port. The shared servers are never touched."""
from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- PostgreSQL

def _admin(sql: str, *params: object) -> None:
    import psycopg
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql, params or None)


def database_down(url: str) -> None:
    """The database at `url` refuses new connections and its open ones are cut, as during a restart."""
    name = url.rsplit("/", 1)[1]
    _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    terminate_backends(url)


def database_up(url: str) -> None:
    _admin(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" ALLOW_CONNECTIONS true')


def terminate_backends(url: str) -> None:
    """Cut every open connection to the database at `url` (what its clients see of a restart)."""
    _admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
           url.rsplit("/", 1)[1])


@contextlib.contextmanager
def database_outage(url: str) -> Iterator[None]:
    database_down(url)
    try:
        yield
    finally:
        database_up(url)


# ---------------------------------------------------------------- Redis

class RedisServer:
    """A `redis-server` of this test's own on a free port, without persistence (a restart loses its queue, the
    worst case), killed with SIGKILL and started again on the same port."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; scripts/services.sh installs it")
        self.binary, self.directory, self.port = binary, directory, free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.directory)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise AssertionError("the test's redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    yield server
    server.kill()
