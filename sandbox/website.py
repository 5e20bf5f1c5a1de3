"""The sandbox playing the website: it posts a contact-form submission to `--webhook-url`/webhooks/form as the website
does, a Standard Webhook (`webhook-id`, `webhook-timestamp`, `webhook-signature`) signed with the sandbox's
`form_webhook_secret` (docs/vendors/standard-webhooks.md#headers-and-signature). The website is no vendor: it has no API
on the sandbox's port and no objects in `GET /_sandbox/state`, so it is a sender only (`emit.SENDERS`).
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import httpx
from standardwebhooks import Webhook

from core.settings import ConfigError, load_config, load_env

SERVICE = "form"
FORM = "website"

# What the console's form starts with: the website form's own field names (config forms.website.fields), made-up
# values a person can edit before sending.
DEMO_FIELDS = {"vezeteknev": "Minta", "keresztnev": "Péter", "email": "minta.peter@example.com",
               "cel": "hibabejelentes", "termek": "Crossec Norma",
               "rovid_leiras": "Nem tudok belépni", "reszletes_leiras": "A bejelentkezés után üres oldal jelenik meg."}
FALLBACK_PURPOSES = (("hibabejelentes", "Hibabejelentés"), ("altalanos_kerdes", "Általános kérdés"),
                     ("panasz", "Panasz"), ("egyeb", "Egyéb"))


def emit(event: str, data: dict[str, Any], url: str, credentials: dict[str, str]) -> int:
    """POST `data` (`{"form": ..., "fields": {...}}`; the demo submission when empty) signed as the website signs
    it; a fresh `webhook-id` each time, as a new submission has. `event` is unused: the form sends one kind."""
    body = data or {"form": FORM, "fields": dict(DEMO_FIELDS)}
    raw = json.dumps(body, ensure_ascii=False)
    msg_id, sent_at = f"msg_{uuid.uuid4().hex}", datetime.now(timezone.utc)
    signature = Webhook(credentials["form_webhook_secret"]).sign(msg_id, sent_at, raw)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(sent_at.timestamp())),
               "webhook-signature": signature, "Content-Type": "application/json"}
    return httpx.post(url, content=raw.encode("utf-8"), headers=headers, timeout=10).status_code


@lru_cache(maxsize=1)
def purposes() -> tuple[tuple[str, str], ...]:
    """The form's purpose choices (config `categories`: value and Hungarian label) for the console's select; a
    fixed few when the YAML cannot be read, since the sandbox also runs on its own."""
    try:
        config = load_config(load_env().switchboard_config)
    except ConfigError:
        return FALLBACK_PURPOSES
    return tuple((value, spec.label.get("hu", value)) for value, spec in config.categories.items())
