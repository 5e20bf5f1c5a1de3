"""Logs are JSON off a terminal and never carry an email address or a phone number in clear."""
from __future__ import annotations

import io
import json
import logging

import pytest

from core import logs


@pytest.fixture
def captured():
    """core.logs configured on a non-terminal stream; the root logger restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure("DEBUG", stream=stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_when_not_a_terminal(captured):
    logging.getLogger("switchboard.test").warning("hello %s", "world")
    [record] = lines(captured)
    assert record["message"] == "hello world"
    assert record["level"] == "WARNING"
    assert record["name"] == "switchboard.test"
    assert "time" in record


def test_logged_email_and_phone_come_out_masked(captured):
    log = logging.getLogger("switchboard.test")
    log.info("form from anna.kovacs@example.com, phone +36 30 123 4567")
    log.info("caller %s wrote from %s", "+36-1-234-5678", "bela@mail.example.hu")
    log.info("contact", extra={"email": "cecil@example.org", "phone": "06301234567"})
    text = captured.getvalue()
    for secret in ("anna.kovacs@example.com", "example.com", "123 4567", "+36-1-234-5678", "bela@mail",
                   "cecil@example.org", "06301234567"):
        assert secret not in text
    first, second, third = lines(captured)
    assert first["message"] == "form from a***@***, phone ***67"
    assert second["message"] == "caller ***78 wrote from b***@***"
    assert third["email"] == "c***@***" and third["phone"] == "***67"


def test_third_party_loggers_are_masked_too(captured):
    logging.getLogger("urllib3.connectionpool").warning("retrying for dora@example.com")
    assert "dora@example.com" not in captured.getvalue()
    assert "d***@***" in captured.getvalue()


@pytest.mark.parametrize("text", [
    "ticket 12345 updated",             # ids are not phone numbers
    "took 1.5 s, 3 attempts",
    "2026-11-24T10:00:00Z",
    "job 51b396eb-6ffe-4338-9c1a-123456789012 done",  # a job's id stays traceable
])
def test_ordinary_numbers_survive(text):
    assert logs.mask(text) == text


def test_plain_lines_on_a_terminal():
    stream = io.StringIO()
    stream.isatty = lambda: True  # type: ignore[method-assign]
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO", stream=stream)
        logging.getLogger("switchboard.test").info("mail to eva@example.com")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    out = stream.getvalue()
    assert "switchboard.test: mail to e***@***" in out
    assert not out.lstrip().startswith("{")


def test_iso_dates_are_not_taken_for_phone_numbers():
    assert logs.mask("due 2026-11-24 16:30") == "due 2026-11-24 16:30"
    assert logs.mask("on 2026-11-24 called +36 30 123 4567") == "on 2026-11-24 called ***67"
    assert logs.mask("06-30-123-4567") == "***67"
    assert logs.mask("started at 2026-11-24 14:22:36.331998") == "started at 2026-11-24 14:22:36.331998"
    assert logs.mask("Listening at: http://127.0.0.1:39126 (4526)") == "Listening at: http://127.0.0.1:39126 (4526)"
    assert logs.mask("phone:06301234567 tel:+36301234567") == "phone:***67 tel:***67"


def test_library_chatter_is_quiet_but_its_warnings_and_our_info_show(captured):
    """huey's per-job lines, WeasyPrint's rendering steps, fontTools' subsetting and matplotlib's unit guesses
    would fill a terminal at INFO; their warnings still matter, and so does our own INFO."""
    logs.configure("INFO", stream=captured)
    for name in ("huey", "weasyprint.progress", "fontTools.subset", "matplotlib.category"):
        logging.getLogger(name).info("chatter from %s", name)
    logging.getLogger("weasyprint").warning("a stylesheet could not be read")
    logging.getLogger("flows.privacy.retention").info("retention sweep opened 2 erasure request(s)")
    logging.getLogger("huey.consumer").info("Periodic tasks are disabled.")  # once, when a worker starts
    assert [(r["name"], r["message"]) for r in lines(captured)] == [
        ("weasyprint", "a stylesheet could not be read"),
        ("flows.privacy.retention", "retention sweep opened 2 erasure request(s)"),
        ("huey.consumer", "Periodic tasks are disabled.")]


def test_a_higher_level_quiets_the_worker_start_lines_too(captured):
    logs.configure("WARNING", stream=captured)
    logging.getLogger("huey.consumer").info("Huey consumer started with 1 thread")
    assert lines(captured) == []


def test_tracebacks_stacks_and_nested_extras_are_masked(captured):
    log = logging.getLogger("switchboard.test")
    try:
        raise ValueError("no customer for trace.tamas@example.com or +36 70 987 6543")
    except ValueError:
        log.exception("lookup failed")
    log.warning("here", stack_info=True, extra={"who": {"emails": ["nested.nora@example.com"], "n": 3},
                                                "obj": ValueError("ugo@example.com")})
    text = captured.getvalue()
    for secret in ("trace.tamas", "987 6543", "nested.nora", "ugo@example.com"):
        assert secret not in text
    failure, here = lines(captured)
    assert "ValueError: no customer for t***@*** or ***43" in failure["exc_info"]
    assert "Traceback" in failure["exc_info"]
    assert here["who"] == {"emails": ["n***@***"], "n": 3} and here["obj"] == "u***@***"
    assert "test_tracebacks_stacks_and_nested_extras_are_masked" in here["stack_info"]


def test_handlers_after_the_masking_one_see_the_masked_record(captured):
    """A second handler on the root logger (pytest's caplog, a log shipper) gets what core.logs' handler wrote."""
    seen = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(logging.Formatter().format(record))

    logging.getLogger().addHandler(Keep())
    try:
        raise KeyError("victor@example.com")
    except KeyError:
        logging.getLogger("switchboard.test").error("failed for %s", "victor@example.com", exc_info=True)
    [text] = seen
    assert "victor@" not in text and "v***@***" in text and "Traceback" in text
