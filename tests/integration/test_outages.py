"""A PostgreSQL or Redis outage: the receivers answer 503 with Retry-After (the sender retries), never a 500;
/readyz names the dependency that is out, without a secret; everything works again once it is back."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from core import jobs
from tests.chaos.kit import database_outage, redis_server  # noqa: F401 - redis_server is a fixture
from tests.conftest import _in_use, drop_postgres_database, make_settings, postgres_database

from .flowkit import signed

FORM = {"form": "product", "fields": {"nev": "Kimaradt Kornél", "email": "kimaradt@example.com", "targy": "t",
                                      "uzenet": "u"}}


@pytest.fixture
def postgres(sandbox) -> Iterator[tuple[str, object]]:
    url = postgres_database()
    for loaded in _in_use(make_settings(url, sandbox)):
        from webhooks.app import create_app
        yield url, create_app(loaded).test_client(), loaded
    drop_postgres_database(url)


def post_form(client, settings):
    raw, headers = signed(settings.env.secret("form_webhook_secret"), FORM)
    return client.post("/webhooks/form", data=raw, headers=headers)


@pytest.mark.postgres
def test_a_database_outage_answers_503_with_retry_after_and_readyz_names_the_database(postgres):
    url, client, loaded = postgres
    assert post_form(client, loaded).status_code == 202  # the writer holds a connection now
    with database_outage(url):
        answer = post_form(client, loaded)
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "5"
        assert answer.get_json()["unavailable"] == "database"
        manual = client.post("/admin/tickets", json={"category": "x"},
                             headers={"Authorization": f"Bearer {loaded.env.secret('admin_token')}"})
        assert manual.status_code in (400, 503)  # refused for its category before, or the database is out
        ready = client.get("/readyz")
        assert ready.status_code == 503
        problems = ready.get_json()["problems"]
        assert list(problems) == ["database"] and "unreachable" in problems["database"]
        assert "postgres" not in ready.get_data(as_text=True)  # neither the URL nor the user
    assert post_form(client, loaded).status_code == 202  # back: a new connection
    assert client.get("/readyz").status_code == 200


@pytest.mark.redis
def test_a_redis_outage_makes_readyz_name_the_queue_while_the_receiver_still_stores(settings, client,
                                                                                     redis_server, monkeypatch):
    """The receiver writes to the database only: with the queue out it still stores and answers 202, and the
    workers' recovery sweep queues the event once Redis is back (tests/chaos/test_processes.py)."""
    monkeypatch.setattr(jobs, "huey", jobs.make_huey(redis_server.url))
    assert client.get("/readyz").status_code == 200
    redis_server.kill()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert list(ready.get_json()["problems"]) == ["queue"]
    assert str(redis_server.port) not in ready.get_data(as_text=True)
    assert post_form(client, settings).status_code == 202
    redis_server.start()
    assert client.get("/readyz").status_code == 200


def test_an_outage_raised_anywhere_in_a_request_is_a_503_never_a_500(client, settings, monkeypatch):
    import redis.exceptions
    import sqlalchemy.exc

    from core import ingest, store

    def refused(*_, **__):
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, OSError("connection refused"))

    monkeypatch.setattr(store, "session", refused)
    answer = client.get("/admin/inbox", headers={"Authorization": f"Bearer {settings.env.secret('admin_token')}"})
    assert answer.status_code == 503 and answer.get_json()["unavailable"] == "database"
    assert answer.headers["Retry-After"] == "5"

    def queue_down(*_, **__):
        raise redis.exceptions.ConnectionError("connection refused")

    monkeypatch.setattr(ingest, "store_events", queue_down)
    answer = post_form(client, settings)
    assert answer.status_code == 503 and answer.get_json()["unavailable"] == "queue"
