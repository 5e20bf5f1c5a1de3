"""HubSpot webhook batches as HubSpot sends them: a JSON array of events shaped like the fixtures in
`webhooks/hubspot/fixtures/`, signed v3 (and v1, as app subscriptions are) with the app's client secret
(docs/vendors/hubspot.md#webhooks)."""
from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import httpx
from hubspot.utils.signature import Signature

FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "hubspot" / "fixtures"
# HubSpot hashes the URI with these escapes decoded (validating-requests page, docs/vendors/hubspot.md#signatures).
DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
           "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
_event_ids = itertools.count(random.randrange(10**9, 2 * 10**9))


def fixture(subscription_type: str, variant: str | None = None) -> list[dict[str, Any]]:
    """The recorded batch for `<subscriptionType>__<variant>.json` (the first variant when none is named)."""
    pattern = f"{subscription_type}__{variant or '*'}.json"
    paths = sorted(FIXTURES.glob(pattern))
    if not paths:
        raise ValueError(f"no HubSpot fixture matches {pattern}")
    return json.loads(paths[0].read_text())


def signed_uri(uri: str) -> str:
    for encoded, char in DECODED.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def signature_headers(secret: str, method: str, uri: str, body: bytes | str, timestamp_ms: int | None = None,
                      versions: tuple[str, ...] = ("v3", "v1")) -> dict[str, str]:
    """The headers HubSpot puts on a webhook: v3 = base64 HMAC-SHA256 over method + URI + body + timestamp,
    v1 = hex SHA-256 over secret + body."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    headers: dict[str, str] = {}
    if "v3" in versions:
        headers["X-HubSpot-Signature-v3"] = Signature.get_signature(
            secret, text, "v3", http_uri=signed_uri(uri), http_method=method, timestamp=stamp)
        headers["X-HubSpot-Request-Timestamp"] = stamp
    for version in ("v1", "v2"):
        if version in versions:
            headers["X-HubSpot-Signature"] = Signature.get_signature(
                secret, text, version, http_uri=signed_uri(uri), http_method=method)
            headers["X-HubSpot-Signature-Version"] = version
    return headers


def batch(event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Events for `event` about `data`: `data` holds one event's fields (objectId, propertyName, ...), or
    `{"events": [...]}` for a batch, each item may name its own `subscriptionType` and fixture `variant`."""
    items = data.get("events") if isinstance(data.get("events"), list) else [data]
    events = []
    for item in items:
        fields = {k: v for k, v in item.items() if k != "variant"}
        kind = fields.get("subscriptionType") or event
        template = fixture(kind, item.get("variant"))[0]
        events.append({**template, "eventId": next(_event_ids), "occurredAt": int(time.time() * 1000),
                       "attemptNumber": 0, **fields, "subscriptionType": kind})
    return events


def emit(event: str, data: dict[str, Any], url: str, credentials: dict[str, str]) -> int:
    """POST a signed batch to `url`; the receiver's status code."""
    body = json.dumps(batch(event, data), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json",
               "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: webhooks-nio-http-client)",
               **signature_headers(credentials["hubspot_client_secret"], "POST", url, body)}
    return httpx.post(url, content=body, headers=headers, timeout=10).status_code
