"""`GET /`: a small HTML page saying what the service is, whether it is ready, and where to go next."""
from __future__ import annotations

import re

from webhooks.app import create_app


def links(html: str) -> set[str]:
    return set(re.findall(r'<a href="([^"]+)"', html))


def test_home_page_says_what_this_is_and_links_the_platform_endpoints(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "<h1>Switchboard</h1>" in html and "Running and ready" in html
    assert {"/healthz", "/readyz", "/metrics"} <= links(html)
    assert "sandbox console" not in html  # these settings name no sandbox


def test_home_page_links_the_sandbox_console_on_the_embedded_default(settings):
    html = create_app(settings.model_copy(update={"sandbox_url": "http://127.0.0.1:8901"})).test_client().get("/")
    assert "http://127.0.0.1:8901/" in links(html.get_data(as_text=True))


def test_home_page_says_what_is_not_ready(settings):
    broken = settings.env.model_copy(update={"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    app = create_app(settings.model_copy(update={"env": broken}))
    from core import store
    store.dispose()
    html = app.test_client().get("/").get_data(as_text=True)
    assert 'role="alert"' in html and "Not ready: database unreachable" in html
