"""HubSpot webhook subscriptions: a JSON array of up to 100 events, each stored as its own inbox row keyed by
(subscriptionId, eventId). Verified with X-HubSpot-Signature-v3 (HMAC over method, URL, body and timestamp, within
5 minutes) or, since app webhooks are sent signed v1, X-HubSpot-Signature with its version header
(docs/vendors/hubspot.md#webhooks)."""
from __future__ import annotations

import time

from werkzeug.wrappers import Request
from hubspot.utils.signature import Signature

from core.settings import Config, Env

from ..events import Event, Invalid, Rejected, json_body, vendor_id

WINDOW_MS = 5 * 60 * 1000
MAX_EVENTS = 1000  # HubSpot sends at most 100; anything far beyond is not HubSpot
# HubSpot signs the URI with these characters decoded (documented table, validating-requests page).
DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
           "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def _signed_uri(request: Request) -> str:
    uri = request.url
    for encoded, char in DECODED.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def verify(request: Request, env: Env) -> None:
    secret = env.secret("hubspot_client_secret")
    if not secret:
        raise Rejected("HUBSPOT_CLIENT_SECRET is not set")
    body = request.get_data(cache=True).decode("utf-8", errors="replace")
    # Header values may hold any byte (WSGI gives them as latin-1): the library's compare_digest raises a
    # TypeError on a non-ASCII str, and "²".isdigit() is true while int("²") fails, so both are checked first.
    v3 = request.headers.get("X-HubSpot-Signature-v3")
    if v3:
        stamp = request.headers.get("X-HubSpot-Request-Timestamp", "")
        if not v3.isascii():
            raise Rejected("bad v3 signature")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 16) \
                or abs(time.time() * 1000 - int(stamp)) > WINDOW_MS:
            raise Rejected("stale or missing timestamp")
        if not Signature.is_valid(v3, secret, body, _signed_uri(request), request.method, "v3", stamp):
            raise Rejected("bad v3 signature")
        return
    signature = request.headers.get("X-HubSpot-Signature")
    version = request.headers.get("X-HubSpot-Signature-Version", "v1")
    if not signature or not signature.isascii() or version not in ("v1", "v2"):
        raise Rejected("unsigned")
    if not Signature.is_valid(signature, secret, body, _signed_uri(request), request.method, version):
        raise Rejected(f"bad {version} signature")


def parse(request: Request, config: Config) -> list[Event]:
    body = json_body(request)
    events = body if isinstance(body, list) else [body]
    if not events or len(events) > MAX_EVENTS:
        raise Invalid(f"expected a JSON array of 1 to {MAX_EVENTS} events")
    parsed = []
    for index, event in enumerate(events):
        if not isinstance(event, dict) or not all(isinstance(event.get(k), int) and vendor_id(event[k]) is not None
                                                  for k in ("eventId", "subscriptionId", "objectId")) \
                or not isinstance(event.get("subscriptionType"), str):
            raise Invalid("each event needs integer eventId, subscriptionId, objectId and a subscriptionType",
                          fields={f"[{index}]": "invalid event"})
        parsed.append(Event(key=f"{event['subscriptionId']}:{event['eventId']}", kind=event["subscriptionType"],
                            payload=event))
    return parsed
