"""What the server needs to know of each fake: one `Vendor` per module, listed in `server.VENDORS`."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Request, Response


class Refused(Exception):
    """A fake refusing a request: the server answers it in the vendor's own error shape (`Vendor.error`), or with
    `body` as it is where the vendor's shape depends on the case (HappyFox's field errors)."""

    def __init__(self, status: int, message: str = "", body: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.body = status, message, body


@dataclass
class Vendor:
    name: str                                                   # hubspot | happyfox | aircall | gmail
    prefixes: tuple[str, ...]                                   # the real API's path prefixes
    blueprint: Blueprint
    authenticate: Callable[[Request, dict[str, str]], Response | None]  # None when the credentials are good
    error: Callable[[int, str], Response]                       # the vendor's error body for a status
    rate_limited: Callable[[float], Response]                   # the vendor's 429, with its headers
    limit: tuple[int, float]                                    # the documented rate: requests per seconds
    seed: Callable[[dict[str, Any]], None]                      # the state of a fresh account
    # Send the vendor's webhook for `event` about `data` to `url`, authenticated as the vendor does.
    emit: Callable[[str, dict[str, Any], str, dict[str, str]], Any] | None = None
    lockout_seconds: float = 0                                  # HappyFox refuses everything for a while after a 429
