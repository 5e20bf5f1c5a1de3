"""Signing in to the staff console from a test: Flask's test client for the service, real HTTP to the sandbox's fake
Google for the pick-a-user page, so the service's token exchange, JWKS fetch and userinfo call are real too."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

OPS, PRIVACY, COMPLAINTS, VIEWER = ("anna.ops@example.com", "peter.privacy@example.com",
                                     "kata.complaints@example.com", "viktor.viewer@example.com")
NO_ROLE, OUTSIDER = "nora.norole@example.com", "eve@example.org"


def authorize_url(client: Any, path: str = "/staff/") -> str:
    """Where a signed-out request to `path` sends the browser (the provider's authorization endpoint)."""
    response = client.get(path)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response.headers["Location"]


def pick(url: str, email: str) -> str:
    """Press the user's button on the provider's page; the URL it sends the browser back to."""
    parts = urlsplit(url)
    form = {k: v[0] for k, v in parse_qs(parts.query).items()}
    answer = httpx.post(f"{parts.scheme}://{parts.netloc}{parts.path}", data={**form, "email": email}, timeout=30)
    assert answer.status_code == 302, answer.text[:500]
    return answer.headers["location"]


def sign_in(client: Any, email: str, path: str = "/staff/") -> Any:
    """The whole round trip; the service's answer to the callback (a redirect when the sign-in worked)."""
    back = urlsplit(pick(authorize_url(client, path), email))
    return client.get(f"{back.path}?{back.query}")


def csrf(client: Any) -> str:
    with client.session_transaction() as session:
        return session["csrf"]
