"""The platform's probes: liveness always, readiness only with the database and the queue."""
from __future__ import annotations

from webhooks.app import create_app


def test_healthz_and_readyz_ok(settings):
    client = create_app(settings).test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json


def test_readyz_is_503_with_reason_when_database_is_down(sandbox, tmp_path):
    from tests.conftest import make_settings
    # A PostgreSQL URL on a port nothing listens on: the app must still start and answer.
    broken = make_settings("postgresql+psycopg://nobody@127.0.0.1:1/none", sandbox)
    client = create_app(broken).test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "database" in ready.json["problems"]


def test_metrics_is_prometheus_text(settings):
    response = create_app(settings).test_client().get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert b"# TYPE" in response.data
