"""Email addresses: every address that enters Switchboard (the form, manual tickets, consent withdrawal, HappyFox
and HubSpot payloads, the support mailbox, erasure and export by address) goes through `mailbox()`, so the address
stored, searched and mailed is one and the same string.

An address is one mailbox and nothing else: a list (`a,b@example.com`), a group (`grp:b@example.com;`), a display
name (`Bob <b@example.com>`), a quoted local part or a CR/LF is refused, since an SMTP client or a vendor may read
any of them as a different recipient than the one we stored. The syntax is email-validator's (RFC 5322/6531);
deliverability is not checked (no DNS on the request path). The result is lower-cased whole: vendors and people
treat addresses case-insensitively, and one spelling keeps one customer.
"""
from __future__ import annotations

import functools

from email_validator import EmailNotValidError, validate_email

MAX_LENGTH = 254  # RFC 5321's path limit less the angle brackets


class InvalidAddress(ValueError):
    """Not a single mailbox; the message says why without quoting the value (it is personal data)."""


def mailbox(value: object) -> str:
    """The normalised single mailbox `value` holds, or InvalidAddress."""
    if not isinstance(value, str):
        raise InvalidAddress("must be text")
    value = value.strip()
    if not value:
        raise InvalidAddress("required")
    if any(ch in value for ch in "\r\n"):
        raise InvalidAddress("must be one line")
    if len(value) > MAX_LENGTH:
        raise InvalidAddress(f"longer than {MAX_LENGTH} characters")
    normalised = _validated(value)
    if normalised is None:
        raise InvalidAddress("not a single email address (no list, group, display name or quotes)")
    return normalised


@functools.lru_cache(maxsize=256)
def _validated(value: str) -> str | None:
    """email-validator's verdict (about 0.1 ms, mostly IDNA-encoding the domain: an eighth of a form delivery's
    CPU), kept for the last few hundred addresses: a repeat sender and a redelivered webhook pay it once. Only in
    this process's memory, never written anywhere; the error is not cached as text (it may quote the input)."""
    try:
        checked = validate_email(value, check_deliverability=False, allow_display_name=False,
                                 allow_quoted_local=False, allow_domain_literal=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


def mailbox_or_none(value: object) -> str | None:
    """The normalised mailbox, or None when `value` is missing or not a single mailbox (vendor data we only read)."""
    try:
        return mailbox(value)
    except InvalidAddress:
        return None
