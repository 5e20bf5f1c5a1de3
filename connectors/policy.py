"""The one HTTP policy every connector runs its calls through: pacing to the vendor's rate, a timeout on every
call (the connector passes `policy.timeout` to its HTTP library), retries with exponential backoff and jitter on
429, 5xx and broken connections honouring `Retry-After`, and no retry on any other error.

A connector wraps each request as a function that performs it and raises a typed error from `errors.py`;
`Policy.call` does the rest. A wait longer than `max_inline_wait` (HappyFox locks a client out for 10 minutes
after a 429) is not slept through inside a worker: the RateLimited error goes up, and the job queue retries
the whole job later.

A create that the vendor does not make idempotent (a HappyFox ticket, a HubSpot ticket, contact or call) is called
with `idempotent=False`: only a 429, which the vendor certainly did not act on, is retried inline. After a timeout,
a 5xx or a dropped connection the create may have happened; retried inline it would make a second object, so the
error goes up at once and the job's retry searches by the key stamped on the object before it creates again.
A MaybeSent (a mail the SMTP server may have accepted) is never retried inline either.
"""
from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timezone
from typing import TypeVar

from prometheus_client import Counter
from tenacity import (RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential,
                      wait_random)

from core.settings import Settings

from . import pacing
from .errors import Conflict, MaybeSent, RateLimited, VendorError, for_status

T = TypeVar("T")
log = logging.getLogger(__name__)

CALLS = Counter("switchboard_vendor_calls_total", "Outbound API calls by vendor and outcome", ["vendor", "outcome"])


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds or an HTTP date) or a rate-limit reset header carrying a Unix
    time in seconds or milliseconds (Aircall's `X-AircallApi-Reset`; its unit is not documented)."""
    now = time.time() if now is None else now
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):  # unreadable: fall back to the reset header or our own backoff
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:  # "-0000" means UTC with no zone information (RFC 5322 §3.3)
                parsed = parsed.replace(tzinfo=timezone.utc)
            return max(0.0, parsed.timestamp() - now)
    reset = lowered.get("x-aircallapi-reset")
    if reset:
        try:
            stamp = float(reset)
        except ValueError:
            return None
        if stamp > 1e11:  # milliseconds
            stamp /= 1000
        return max(0.0, stamp - now)
    return None


def quota(headers: Mapping[str, str], now: float | None = None) -> pacing.Quota | None:
    """What an answer's headers say of the vendor's rate window: HubSpot's `X-HubSpot-RateLimit-Remaining`
    (docs/vendors/hubspot.md#rate-limits), Aircall's `X-AircallApi-Remaining` and `-Reset`
    (docs/vendors/aircall.md#rate-limits); None when the answer carries neither (HappyFox never does)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("x-hubspot-ratelimit-remaining", "x-aircallapi-remaining"):
        if name in lowered:
            try:
                remaining = int(lowered[name])
            except ValueError:
                return None
            reset = lowered.get("x-aircallapi-reset")
            return pacing.Quota(remaining, retry_after({"X-AircallApi-Reset": reset}, now) if reset else None)
    return None


# The report of the paced call under way in this thread, for `Policy.observe`.
_REPORT: ContextVar[pacing.Report | None] = ContextVar("switchboard_pacing_report", default=None)


# A 429 that names no wait: HappyFox locks the client out for 10 minutes, no Retry-After documented
# (docs/vendors/happyfox.md#rate-limits).
DEFAULT_RATE_LIMIT_WAIT = {"happyfox": 600.0}
EXISTING_ID = re.compile(r"Existing ID: *(\d+)")  # HubSpot's 409 on create (docs/vendors/hubspot.md#errors)


def _field_errors(value: object) -> str | None:
    """HappyFox's validation shapes: `[{"field": f, "errors": [...]}]` or `{field: message}`
    (docs/vendors/happyfox.md#errors)."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and "field" in v for v in value):
        return "; ".join(f"{v['field']}: {' '.join(map(str, v.get('errors') or []))}".strip() for v in value)
    if isinstance(value, dict) and value and all(isinstance(v, str) for v in value.values()):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    return None


def vendor_message(body: str | bytes | None) -> str:
    """The vendor's own words from an error body: the usual JSON keys, else the start of the text."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    body = (body or "").strip()
    try:
        data = json.loads(body)
    except ValueError:
        return body[:300] or "no message"
    if isinstance(data, list):
        return (_field_errors(data) or body)[:300]
    if isinstance(data, dict):
        for key in ("message", "error_description", "error", "errors", "troubleshoot"):
            value = data.get(key)
            if isinstance(value, dict) and value.get("message"):  # Google: {"error": {"message": ...}}
                value = value["message"]
            if value:
                text = value if isinstance(value, str) else (_field_errors(value)
                                                            or json.dumps(value, ensure_ascii=False))
                return text[:300]
    return body[:300] or "no message"


def raise_for_status(vendor: str, status: int, headers: Mapping[str, str], body: str | bytes | None) -> None:
    """Raise the typed error for an HTTP error answer (any status of 400 or more), carrying the vendor's message
    and the wait it asks for; do nothing for a success."""
    if status < 400:
        return
    message, wait = vendor_message(body), retry_after(headers)
    if status == 429 and wait is None:
        wait = DEFAULT_RATE_LIMIT_WAIT.get(vendor)
    if status == 409:
        found = EXISTING_ID.search(message)
        raise Conflict(vendor, message, status, existing_id=found.group(1) if found else None)
    raise for_status(vendor, status, message, wait)


def backoff(initial: float, maximum: float, jitter: float = 0.5) -> Callable[[RetryCallState], float]:
    """Exponential backoff from `initial` seconds, capped at `maximum`, plus up to `jitter` seconds at random
    (tenacity's `wait_exponential_jitter` deprecated its `initial` in 9.x; this reads the same on 8.x and 9.x)."""
    return wait_exponential(multiplier=initial, max=maximum) + wait_random(0, jitter)


@dataclass
class Policy:
    vendor: str
    requests: int | None = None          # the vendor's rate: `requests` per `per_seconds`; None = no pacing
    per_seconds: float = 1.0
    pacer: pacing.Pacer | None = None
    timeout: float = 10.0
    attempts: int = 5
    max_inline_wait: float = 30.0
    backoff: Callable[[RetryCallState], float] = field(default_factory=lambda: backoff(0.5, 20))

    @contextmanager
    def paced(self, key: str | None = None) -> Iterator[None]:
        """Hold the next slot of the vendor's window (shared by every process) for the call made inside."""
        if self.pacer is None or not self.requests:
            yield
            return
        with pacing.paced(self.pacer, key or self.vendor, pacing.Rate(self.requests, self.per_seconds)) as report:
            token = _REPORT.set(report)
            try:
                yield
            finally:
                _REPORT.reset(token)

    @staticmethod
    def observe(headers: Mapping[str, str]) -> None:
        """A connector hands every answer's headers here (errors' too): the vendor's own count of its window
        corrects the shared schedule."""
        report = _REPORT.get()
        if report is not None:
            report.quota = quota(headers)

    def _retryable(self, exc: BaseException) -> bool:
        return (isinstance(exc, VendorError) and exc.transient and not isinstance(exc, MaybeSent)
                and (exc.retry_after or 0) <= self.max_inline_wait)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return max(self.backoff(state), getattr(exc, "retry_after", None) or 0.0)

    def _retryable_create(self, exc: BaseException) -> bool:
        return isinstance(exc, RateLimited) and self._retryable(exc)

    def call(self, request: Callable[[], T], *, pace_key: str | None = None, idempotent: bool = True) -> T:
        """Run `request` (one HTTP call that raises typed errors) under this policy. `idempotent=False` for a
        create the vendor may have carried out although the answer was lost: only a 429 is retried inline."""
        retryable = self._retryable if idempotent else self._retryable_create
        retrying = Retrying(retry=retry_if_exception(retryable), stop=stop_after_attempt(self.attempts),
                            wait=self._wait, reraise=True, before_sleep=self._log_retry)
        for attempt in retrying:
            with attempt:
                try:
                    with self.paced(pace_key):
                        result = request()
                except VendorError as exc:
                    CALLS.labels(self.vendor, type(exc).__name__).inc()
                    raise
                CALLS.labels(self.vendor, "ok").inc()
                return result
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s call failed (%s), retry %d in %.1fs", self.vendor, type(exc).__name__,
                    state.attempt_number, state.upcoming_sleep)


def for_vendor(vendor: str, settings: Settings, limit_key: str | None = None,
               pacer: pacing.Pacer | None = None) -> Policy:
    """The policy for `vendor` from settings: its YAML limit itself (no margin: the pacer keeps the vendor's window
    from the answers' times and the vendor's own reports, docs/decisions.md "Pacing at the limit"), the process's
    shared pacer, the timeout."""
    limit = settings.config.limits.get(limit_key or vendor)
    pacer = pacer or pacing.shared(settings.env.database_url, settings.env.redis_url)
    return Policy(vendor=vendor, requests=limit.requests if limit else None,
                  per_seconds=limit.per_seconds if limit else 1.0, pacer=pacer,
                  timeout=settings.config.timeouts_seconds)
