"""Shared fixtures: a real sandbox on loopback, a fresh SQLite (or PostgreSQL) database per test, and settings
that point every connector at the sandbox.

PostgreSQL and Redis are the servers `scripts/services.sh` started; under CI=true a missing one is an error,
elsewhere its tests are skipped with the reason.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Before anything imports core.jobs: the huey SQLite file and other embedded files go to a scratch directory.
os.environ.setdefault("SWITCHBOARD_DATA_DIR", tempfile.mkdtemp(prefix="switchboard-test-"))
if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker inherits the controller's directory: one huey file each
    os.environ["SWITCHBOARD_DATA_DIR"] = tempfile.mkdtemp(prefix=f"switchboard-test-{os.environ['PYTEST_XDIST_WORKER']}-")
for _name in list(os.environ):  # a developer's real credentials must never reach a test
    if _name.startswith(("HUBSPOT_", "HAPPYFOX_", "AIRCALL_", "GMAIL_", "GOOGLE_", "SMTP_")) or _name in (
            "DATABASE_URL", "REDIS_URL", "FORM_WEBHOOK_SECRET", "ADMIN_TOKEN", "SECRET_KEY", "SWITCHBOARD_CONFIG",
            "ADMIN_TOKENS", "OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"):
        del os.environ[_name]

import httpx
import pytest

from core import settings as settings_module
from core import store
from core.settings import DEFAULT_CONFIG, Env, LimitSpec, Settings, load_config

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# One Redis database per xdist worker (gw0 -> 15, gw1 -> 14, ...): a test's FLUSHDB must not empty another's queue.
# TEST_REDIS_DB_OFFSET shifts the range, so that two checkouts can run their suites side by side.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0) + int(os.environ.get("TEST_REDIS_DB_OFFSET", 0))
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - _WORKER % 16}")
IN_CI = os.environ.get("CI") == "true"
# The console script of the environment running the tests (`.venv`, or `.venv-latest` under `make test-latest`).
SWITCHBOARD = [str(Path(sys.executable).with_name("switchboard"))]

# Generous limits so that tests are not paced to the vendors' real rates; the pacing tests set their own.
FAST_LIMITS = {name: LimitSpec(requests=10_000, per_seconds=1) for name in
               ("hubspot", "hubspot_search", "happyfox", "aircall", "gmail")}


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable ({type(exc).__name__}: {exc}); scripts/services.sh starts it"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


# ---------------------------------------------------------------- sandbox

class SandboxClient:
    """The `/_sandbox/` control API, as a test drives it."""

    def __init__(self, running: Any) -> None:
        self.running = running
        self.base_url = running.base_url
        self.smtp_port = running.smtp_port
        self.http = httpx.Client(base_url=self.base_url, timeout=10)

    @property
    def credentials(self) -> dict[str, str]:
        return self.running.sandbox.credentials

    def reset(self) -> None:
        self.http.post("/_sandbox/reset").raise_for_status()

    def state(self, service: str | None = None) -> dict[str, Any]:
        data = self.http.get("/_sandbox/state").raise_for_status().json()
        return data[service] if service else data

    def calls(self, service: str | None = None) -> list[dict[str, Any]]:
        params = {"service": service} if service else {}
        return self.http.get("/_sandbox/calls", params=params).raise_for_status().json()

    def clear_calls(self) -> None:
        self.http.delete("/_sandbox/calls").raise_for_status()

    def fault(self, **fault: Any) -> None:
        self.http.post("/_sandbox/faults", json=fault).raise_for_status()

    def limits(self, **limits: Any) -> None:
        self.http.post("/_sandbox/limits", json=limits).raise_for_status()

    def mail(self) -> list[dict[str, Any]]:
        return self.http.get("/_sandbox/mail").raise_for_status().json()

    def wait_idle(self, quiet: float = 0.05, timeout: float = 10) -> None:
        """Until every request the fakes got is answered and logged and every webhook they send is sent."""
        answer = self.http.get("/_sandbox/idle", params={"quiet": quiet, "timeout": timeout}, timeout=timeout + 5)
        assert answer.status_code == 200, "the sandbox did not settle"

    def emit(self, service: str, event: str, data: dict[str, Any], url: str | None = None) -> dict[str, Any]:
        body = {"service": service, "event": event, "data": data, **({"url": url} if url else {})}
        return self.http.post("/_sandbox/emit", json=body).raise_for_status().json()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Any]:
    from sandbox.server import start
    running = start("127.0.0.1", 0, 0)
    yield running
    running.stop()


@pytest.fixture
def sandbox(sandbox_server: Any) -> Iterator[SandboxClient]:
    """The session's sandbox, reset to a fresh account, with every vendor rate limit lifted."""
    client = SandboxClient(sandbox_server)
    client.reset()
    client.limits(**{name: None for name in sandbox_server.sandbox.vendors})
    yield client
    sandbox_server.sandbox.webhook_url = None
    client.http.close()


# ---------------------------------------------------------------- databases

def postgres_database() -> str:
    """A new, empty PostgreSQL database for one test; its URL."""
    import psycopg
    name = f"sb_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _unavailable("PostgreSQL", exc)
    return PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"


def drop_postgres_database(url: str) -> None:
    import psycopg
    store.dispose()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/switchboard.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on SQLite and on PostgreSQL: one contract, every backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/switchboard.db"
        return
    url = postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def redis_url() -> str:
    import redis
    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    return REDIS_TEST_URL


# ---------------------------------------------------------------- settings

def make_settings(database_url: str, sandbox: SandboxClient | None = None, **env: Any) -> Settings:
    base = Env(_env_file=None, database_url=database_url, switchboard_config=DEFAULT_CONFIG, **env)
    if sandbox is not None:
        base = base.with_sandbox(sandbox.base_url, smtp_port=sandbox.smtp_port)
    config = load_config(DEFAULT_CONFIG).model_copy(update={"limits": FAST_LIMITS, "timeouts_seconds": 2.0})
    return Settings(env=base, config=config)


def _in_use(loaded: Settings) -> Iterator[Settings]:
    """Make `loaded` the process's settings on its freshly migrated database, and forget both afterwards."""
    settings_module.use(loaded)
    store.upgrade(loaded.env.database_url)
    yield loaded
    settings_module.use(None)
    store.dispose()


@pytest.fixture
def settings(sqlite_url: str, sandbox: SandboxClient) -> Iterator[Settings]:
    """Settings for a test: a migrated SQLite database of its own and every connector on the sandbox."""
    yield from _in_use(make_settings(sqlite_url, sandbox))


@pytest.fixture
def client(settings: Settings) -> Any:
    """The service's Flask test client on the `settings` fixture."""
    from webhooks.app import create_app
    return create_app(settings).test_client()


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """The service's app on a real loopback port, for what reaches it over HTTP (the sandbox's webhooks, a
    browser); links in its mails point at it."""
    from werkzeug.serving import make_server

    from webhooks.app import create_app
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    settings_module.use(Settings(env=settings.env.model_copy(update={"public_base_url": base_url}),
                                 config=settings.config))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield base_url
    server.shutdown()
    server.server_close()



@pytest.fixture
def any_database(database_url: str, sandbox: SandboxClient) -> Iterator[Settings]:
    """`settings` on SQLite and on PostgreSQL, for what rests on the database's guarantees."""
    yield from _in_use(make_settings(database_url, sandbox))


@pytest.fixture
def db(database_url: str) -> Iterator[str]:
    """A migrated database of each engine in use, with no sandbox; its URL."""
    for loaded in _in_use(make_settings(database_url)):
        yield loaded.env.database_url
