"""Webhooks the sandbox sends: a fake's change announced as the real vendor would (`notify`), and `POST
/_sandbox/emit`'s sends on demand (`emit_now`), each recorded in `GET /_sandbox/emitted`."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from . import website
from .state import Sandbox, current

log = logging.getLogger(__name__)

# Webhook senders that are no vendor: no API prefix, no state, no rate limit; only `POST /_sandbox/emit`.
SENDERS: dict[str, Callable[[str, dict[str, Any], str, dict[str, str]], Any]] = {website.SERVICE: website.emit}


def notify(service: str, event: str, data: dict[str, Any]) -> None:
    """Called by a fake after a change made through its API: send the vendor's webhook for it, as the real
    vendor would, to `--webhook-url`/webhooks/<service>. Runs in a thread so that the API answer is not held."""
    sandbox = current()
    if not sandbox.webhook_url:
        return
    emit_now(sandbox, service, event, data, f"{sandbox.webhook_url.rstrip('/')}/webhooks/{service}", wait=False)


def senders(sandbox: Sandbox) -> dict[str, Callable[[str, dict[str, Any], str, dict[str, str]], Any]]:
    """Every service `emit` can send as: the vendors that send webhooks, and the website's form."""
    return {**{name: v.emit for name, v in sandbox.vendors.items() if v.emit is not None}, **SENDERS}


def emit_now(sandbox: Sandbox, service: str, event: str, data: dict[str, Any], url: str,
             wait: bool = True) -> dict[str, Any]:
    sender = senders(sandbox).get(service)
    if sender is None:
        raise ValueError(f"{service} sends no webhooks")
    record: dict[str, Any] = {"service": service, "event": event, "url": url, "status": None}
    with sandbox.lock:
        sandbox.emitted.append(record)

    def send() -> None:
        try:
            record["status"] = sender(event, data, url, sandbox.credentials)
        except Exception as exc:  # the receiver being down is the receiver's problem, as with the real vendor
            record["status"] = f"error: {type(exc).__name__}"
            log.warning("sandbox webhook %s %s to %s failed: %s", service, event, url, type(exc).__name__)
        finally:
            sandbox.end()

    sandbox.begin()
    if wait:
        send()
    else:
        threading.Thread(target=send, daemon=True).start()
    return record
