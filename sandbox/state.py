"""The sandbox's memory: every fake's objects, the call log, pending faults, rate windows and received mail.

One `Sandbox` per app (`current()` inside a request). Vendor modules keep their objects in `state[vendor]`, a
plain dict they shape as they like, and take `lock` while they change it: the server is threaded.
"""
from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app

from core.settings import SANDBOX_DEFAULTS, SANDBOX_GMAIL_TOKEN, Env

if TYPE_CHECKING:
    from .vendor import Vendor


def credentials(env: Env) -> dict[str, str]:
    """What the fakes accept: the connectors' own environment variables, or the sandbox defaults."""
    creds = {name: env.secret(name) or default if name != "gmail_user" else (env.gmail_user or default)
             for name, default in SANDBOX_DEFAULTS.items()}
    creds["gmail_token"] = SANDBOX_GMAIL_TOKEN
    return creds


@dataclass
class Fault:
    service: str
    method: str = "*"
    path: str = "*"
    status: int | None = None
    times: int = 1
    retry_after: float | None = None
    delay: float | None = None
    drop: bool = False
    every: int = 1   # one matching request in `every` gets the fault (5: a steady 20 % storm), the others pass
    seen: int = 0    # matching requests so far

    def matches(self, service: str, method: str, path: str) -> bool:
        if self.times <= 0 or self.service not in (service, "*"):
            return False
        if self.method not in ("*", method.upper()):
            return False
        return path.startswith(self.path[:-1]) if self.path.endswith("*") else path == self.path


@dataclass
class Sandbox:
    vendors: dict[str, Vendor]
    credentials: dict[str, str]
    webhook_url: str | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    mail: list[dict[str, Any]] = field(default_factory=list)
    emitted: list[dict[str, Any]] = field(default_factory=list)
    limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    _windows: dict[str, collections.deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    # Work under way: vendor API requests being answered and webhooks being sent (`GET /_sandbox/idle`).
    _busy: int = 0
    _last_busy: float = field(default_factory=time.monotonic)
    _settled: threading.Condition = field(default_factory=threading.Condition)
    on_reset: list[Callable[[], None]] = field(default_factory=list)  # what else a reset forgets (issued tokens)

    def reset(self) -> None:
        with self.lock:
            self.state = {name: {} for name in self.vendors}
            self.calls.clear()
            self.faults.clear()
            self.mail.clear()
            self.emitted.clear()
            self._windows.clear()
            self._locked_until.clear()
            self.limits = {name: vendor.limit for name, vendor in self.vendors.items()}
            self._ids = itertools.count(1001)
            for name, vendor in self.vendors.items():
                vendor.seed(self.state[name])
            for forget in self.on_reset:
                forget()

    def next_id(self) -> int:
        """Ids unique across the whole sandbox, so a test can never mistake one vendor's id for another's."""
        with self.lock:
            return next(self._ids)

    def begin(self) -> None:
        with self._settled:
            self._busy += 1

    def end(self) -> None:
        with self._settled:
            self._busy -= 1
            self._last_busy = time.monotonic()
            self._settled.notify_all()

    def wait_idle(self, quiet: float, timeout: float) -> bool:
        """Wait until nothing has been under way for `quiet` seconds: every request answered and logged, every
        webhook sent. What a test waits for instead of sleeping; False when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._settled:
            while True:
                now = time.monotonic()
                calm_at = self._last_busy + quiet
                if self._busy == 0 and now >= calm_at:
                    return True
                if now >= deadline:
                    return False
                self._settled.wait(min(deadline, calm_at if self._busy == 0 else deadline) - now)

    def take_fault(self, service: str, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(service, method, path):
                    fault.seen += 1
                    if fault.seen % fault.every:
                        continue
                    fault.times -= 1
                    return fault
        return None

    def over_limit(self, service: str) -> float | None:
        """Count this call against the service's rate; the seconds until a slot frees up when it is over."""
        if service not in self.limits:
            return None
        requests, per_seconds = self.limits[service]
        lockout = self.vendors[service].lockout_seconds
        now = time.monotonic()
        with self.lock:
            if self._locked_until.get(service, 0) > now:
                return self._locked_until[service] - now
            window = self._windows.setdefault(service, collections.deque())
            while window and window[0] <= now - per_seconds:
                window.popleft()
            if len(window) >= requests:
                if lockout:
                    self._locked_until[service] = now + lockout
                    return lockout
                return window[0] + per_seconds - now
            window.append(now)
        return None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {name: _plain(self.state.get(name, {})) for name in self.vendors}


def _plain(value: Any) -> Any:
    """A JSON-safe deep copy (state dicts may be keyed by ints)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return value


def current() -> Sandbox:
    sandbox: Sandbox = current_app.extensions["sandbox"]
    return sandbox
