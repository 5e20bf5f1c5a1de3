"""Typed errors every connector raises, each carrying the vendor's own message.

Transient (retried by the shared policy): RateLimited, Unavailable. Permanent: the rest. MaybeSent is transient for
the job but never retried inline.
"""
from __future__ import annotations


class VendorError(Exception):
    transient = False

    def __init__(self, vendor: str, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(f"{vendor}: {message}" + (f" (HTTP {status})" if status else ""))
        self.vendor = vendor
        self.message = message
        self.status = status
        self.retry_after = retry_after


class Unauthorized(VendorError):
    """Credentials missing, wrong or lacking a scope: retrying cannot help."""


class NotFound(VendorError):
    pass


class Conflict(VendorError):
    """The object exists already; `existing_id` is the vendor's id for it when the vendor says so."""

    def __init__(self, vendor: str, message: str, status: int | None = 409, existing_id: str | None = None):
        super().__init__(vendor, message, status)
        self.existing_id = existing_id


class InvalidRequest(VendorError):
    """The vendor refused the request as malformed (400, 422 and other 4xx)."""


class BadAnswer(VendorError):
    """The vendor answered with a record we cannot read (connectors/records.py): the message names the field paths
    and error types, never a value. Asking again gets the same answer."""


class RateLimited(VendorError):
    transient = True


class Unavailable(VendorError):
    """5xx, a timeout or a broken connection."""
    transient = True


class MaybeSent(Unavailable):
    """The whole message went to the server and its answer was lost (a timeout or a dropped connection after
    DATA): the server may have accepted it. Sending again could deliver a second copy, so the policy does not
    retry it inline, and a caller that records its sends (flows/effects.py `send_once`) keeps the record. Still
    transient, so that the job's retry carries on with the steps after the send."""


def for_status(vendor: str, status: int, message: str, retry_after: float | None = None) -> VendorError:
    """The typed error for an HTTP status (401 and 403 both mean the credentials do not work)."""
    if status in (401, 403):
        return Unauthorized(vendor, message, status)
    if status == 404:
        return NotFound(vendor, message, status)
    if status == 409:
        return Conflict(vendor, message, status)
    if status == 429:
        return RateLimited(vendor, message, status, retry_after)
    if status >= 500:
        return Unavailable(vendor, message, status, retry_after)
    return InvalidRequest(vendor, message, status)
