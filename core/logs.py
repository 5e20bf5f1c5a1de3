"""Structured logging that never writes an email address or a phone number in clear.

JSON lines when stderr is not a terminal (a PaaS log drain), readable lines on a terminal. Masking happens in a
filter on the handler, so every logger's records pass through it, including third-party libraries'.
"""
from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}")
# A phone number: an optional +, then 7 to 15 digits that may be split by spaces, dots, dashes or brackets.
# Not right after "<digit>:", which is a port (127.0.0.1:39126 (4526)) or the seconds of a time (14:22:36.331998).
PHONE = re.compile(r"(?<![\w+])(?<!\d:)\+?\d[\d ().-]{5,17}\d(?!\w)")
# An ISO date (2026-11-24, perhaps with a time) looks like a phone number to PHONE; it is not personal data.
ISO_DATE = re.compile(r"(?<!\d)(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?!\d)")
# A UUID (a job's id) holds digit runs split by dashes too; masking them would make jobs untraceable.
UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")


def mask(text: str) -> str:
    """`anna@example.com` -> `a***@***`, `+36 30 123 4567` -> `***67`."""
    text = EMAIL.sub(lambda m: f"{m.group(1)}***@***", text)
    uuids = [m.span() for m in UUID.finditer(text)]

    def _phone(m: re.Match[str]) -> str:
        if ISO_DATE.search(m.group(0)) or any(start <= m.start() < end for start, end in uuids):
            return m.group(0)
        digits = re.sub(r"\D", "", m.group(0))
        return f"***{digits[-2:]}" if len(digits) >= 7 else m.group(0)

    return PHONE.sub(_phone, text)


class MaskingFilter(logging.Filter):
    """Masks everything a handler could write from a record: the message, the traceback (formatted here and
    masked, since an exception's text may quote an address), the stack and every extra field, nested or not.
    The record itself is changed, so handlers after this one see it masked too."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = None
        if record.exc_info:
            # Formatted once here; formatters print exc_text and, with exc_info gone, cannot format it unmasked.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD:
                setattr(record, key, _masked(value))
        return True


_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_TRACEBACKS = logging.Formatter()


def _masked(value: object) -> object:
    """An extra field with every text in it masked; numbers and flags as they are, other objects as masked text."""
    if isinstance(value, str):
        return mask(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {_masked(k) if isinstance(k, str) else k: _masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_masked(item) for item in value]
    return mask(str(value))

# Libraries whose INFO lines are chatter, not news: a line per HTTP request, huey's "Executing ..."/"executed in"
# per job (every periodic tick), WeasyPrint's rendering steps, fontTools' font subsetting, matplotlib's guesses
# about axis units. Their warnings and errors still show; our own INFO does.
QUIET = ("urllib3", "httpx", "httpcore", "werkzeug", "mail.log", "alembic.runtime.plugins", "huey", "weasyprint",
         "fontTools", "matplotlib", "PIL")


def configure(level: str = "INFO", stream: TextIO | None = None, json: bool | None = None) -> None:
    stream = stream or sys.stderr
    json = (not stream.isatty()) if json is None else json
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    if json:
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"levelname": "level", "asctime": "time"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("huey.consumer").setLevel(level)  # a worker's start and stop lines, once each, stay
