"""A stateful fake of the HappyFox Help Desk API v1.1 (`/api/1.1/json/...`), shaped by docs/vendors/happyfox.md.

Basic auth api key : auth code; every path ends in `/`; timestamps UTC `YYYY-MM-DD HH:MM:SS`
(docs/vendors/happyfox.md#base-url-auth-and-formats); 300 requests a minute with a 10-minute lock-out after a 429
(docs/vendors/happyfox.md#rate-limits). State in `state["happyfox"]`: the discovery lists,
`tickets` and `users` keyed by id. `common` holds what the parts share, `users` the contacts, `tickets` the rest.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import httpx
from flask import Request, Response

from ..vendor import Vendor
from . import tickets, users  # noqa: F401 - their routes register on the blueprint
from .common import API, bp, error, seed

FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "happyfox" / "fixtures"


def authenticate(req: Request, credentials: dict[str, str]) -> Response | None:
    auth = req.authorization
    if auth and auth.type == "basic" and auth.username == credentials["happyfox_api_key"] \
            and auth.password == credentials["happyfox_auth_code"]:
        return None
    response = error(401, "Authentication credentials were not provided or are invalid.")
    response.headers["WWW-Authenticate"] = 'Basic realm="Basic"'
    return response


def rate_limited(wait: float) -> Response:
    # Header and body are not documented (docs/vendors/happyfox.md#rate-limits); Retry-After lets a client tell the
    # 10-minute lock-out apart.
    response = error(429, "Too many requests")
    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def fixture(event: str) -> dict[str, Any]:
    """The event's `plain` fixture, else its first variant by name (`<event>__<variant>.json`)."""
    paths = sorted(FIXTURES.glob(f"{event}__*.json"), key=lambda p: (not p.stem.endswith("__plain"), p.name))
    if not paths:
        raise ValueError(f"no HappyFox fixture for {event!r}")
    return json.loads(paths[0].read_text())


def emit(event: str, data: dict[str, Any], url: str, credentials: dict[str, str]) -> int:
    """POST what a smart rule posts: the ticket JSON (or `{"ticket": ...}` when given so), the shared secret in the URL
    since HappyFox signs nothing (docs/vendors/happyfox.md#webhooks). With no data, the event's fixture is sent."""
    payload = data or fixture(event)
    response = httpx.post(url, params={"token": credentials["happyfox_webhook_secret"]},
                          content=json.dumps(payload), headers={"Content-Type": "application/json"}, timeout=10)
    return response.status_code


VENDOR = Vendor(name="happyfox", prefixes=(API + "/",), blueprint=bp, authenticate=authenticate, error=error,
                rate_limited=rate_limited, limit=(300, 60), seed=seed, emit=emit, lockout_seconds=600)
