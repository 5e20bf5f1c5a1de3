"""The shared HTTP policy: reading the wait a vendor asks for, turning error answers into typed errors with the
vendor's own message, and retrying only what a retry can fix."""
from __future__ import annotations

import email.utils
import time

import pytest
from prometheus_client import REGISTRY

from connectors import errors
from connectors import pacing
from connectors.pacing import MemoryPacer
from connectors.policy import Policy, for_vendor, quota, raise_for_status, retry_after, vendor_message

NOW = 1_800_000_000.0
NO_WAIT = lambda state: 0.0  # noqa: E731 - the backoff a test uses: no sleeping between attempts


# ---------------------------------------------------------------- retry_after

@pytest.mark.parametrize("headers, expected", [
    ({"Retry-After": "7"}, 7.0),
    ({"retry-after": "2.5"}, 2.5),                     # header names are case-insensitive
    ({"Retry-After": "-3"}, 0.0),                      # never a negative wait
    ({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
    ({"Retry-After": email.utils.formatdate(NOW + 30)}, 30.0),        # "-0000": UTC without a zone
    ({"Retry-After": email.utils.formatdate(NOW - 60, usegmt=True)}, 0.0),  # a date in the past
    ({"X-AircallApi-Reset": str(int(NOW + 20))}, 20.0),               # Unix seconds
    ({"X-AircallApi-Reset": str(int((NOW + 20) * 1000))}, 20.0),      # Unix milliseconds
    ({"X-AircallApi-Reset": str(int(NOW - 5))}, 0.0),
    ({"Retry-After": "4", "X-AircallApi-Reset": str(int(NOW + 50))}, 4.0),  # Retry-After wins
    ({}, None),
    ({"X-AircallApi-Reset": "soon"}, None),
])
def test_retry_after(headers, expected):
    value = retry_after(headers, now=NOW)
    if expected is None:
        assert value is None
    else:
        assert value == pytest.approx(expected)


def test_unreadable_retry_after_falls_back_instead_of_crashing():
    assert retry_after({"Retry-After": "tomorrow-ish"}, now=NOW) is None
    assert retry_after({"Retry-After": "tomorrow-ish", "X-AircallApi-Reset": str(int(NOW + 9))},
                       now=NOW) == pytest.approx(9.0)


# ---------------------------------------------------------------- raise_for_status

@pytest.mark.parametrize("status, error", [
    (400, errors.InvalidRequest), (401, errors.Unauthorized), (403, errors.Unauthorized),
    (404, errors.NotFound), (409, errors.Conflict), (422, errors.InvalidRequest), (429, errors.RateLimited),
    (500, errors.Unavailable), (502, errors.Unavailable), (503, errors.Unavailable),
])
def test_status_maps_to_typed_error(status, error):
    with pytest.raises(error) as caught:
        raise_for_status("hubspot", status, {}, b'{"message": "boom"}')
    assert caught.value.status == status
    assert caught.value.vendor == "hubspot"
    assert caught.value.message == "boom"
    assert caught.value.transient == (status == 429 or status >= 500)


@pytest.mark.parametrize("status", [200, 201, 204, 302, 399])
def test_success_raises_nothing(status):
    raise_for_status("hubspot", status, {}, b"")


def test_rate_limited_carries_the_wait():
    with pytest.raises(errors.RateLimited) as caught:
        raise_for_status("aircall", 429, {"X-AircallApi-Reset": str(int(time.time() + 40))}, b"{}")
    assert 38 <= caught.value.retry_after <= 40


def test_happyfox_429_without_header_means_the_ten_minute_lockout():
    with pytest.raises(errors.RateLimited) as caught:
        raise_for_status("happyfox", 429, {}, b'{"error": "Too many requests"}')
    assert caught.value.retry_after == 600
    with pytest.raises(errors.RateLimited) as caught:
        raise_for_status("hubspot", 429, {}, b"{}")
    assert caught.value.retry_after is None


def test_hubspot_conflict_names_the_existing_id():
    body = b'{"status":"error","message":"Contact already exists. Existing ID: 5121","category":"CONFLICT"}'
    with pytest.raises(errors.Conflict) as caught:
        raise_for_status("hubspot", 409, {}, body)
    assert caught.value.existing_id == "5121"
    assert "Contact already exists" in str(caught.value)


@pytest.mark.parametrize("body, message", [
    # HubSpot
    (b'{"status":"error","message":"Property values were not valid","category":"VALIDATION_ERROR"}',
     "Property values were not valid"),
    # Aircall: error plus troubleshoot
    (b'{"error":"Not found","troubleshoot":"Check the call id"}', "Not found"),
    # Google APIs (Gmail)
    (b'{"error":{"code":403,"message":"Insufficient Permission","status":"PERMISSION_DENIED"}}',
     "Insufficient Permission"),
    # HappyFox validation (current KB shape) and the old bare list
    (b'{"error":[{"field":"category","errors":["This field is required."]}]}',
     "category: This field is required."),
    (b'[{"field":"name","errors":["This field is required."]}]', "name: This field is required."),
    # HappyFox compulsory-field error on close
    ('{"error":{"t-cf-2":"This field should be filled"}}'.encode(), "t-cf-2: This field should be filled"),
    (b'{"error_description":"invalid_grant"}', "invalid_grant"),
    ("Hiba történt".encode(), "Hiba történt"),       # plain text, UTF-8
    (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
    (b"", "no message"),
    (None, "no message"),
    (b"{}", "{}"),
])
def test_vendor_message(body, message):
    assert vendor_message(body) == message


def test_long_bodies_are_cut():
    assert len(vendor_message("x" * 5000)) == 300
    assert len(vendor_message('{"message": "%s"}' % ("y" * 5000))) == 300


# ---------------------------------------------------------------- Policy.call

class Flaky:
    """A request that fails with the given errors, in order, then answers "ok"."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls: list[float] = []

    def __call__(self) -> str:
        self.calls.append(time.monotonic())
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def policy(**overrides) -> Policy:
    return Policy(**{"vendor": "testvendor", "attempts": 4, "backoff": NO_WAIT, **overrides})


def test_transient_errors_are_retried_until_success():
    request = Flaky(errors.Unavailable("testvendor", "down", 503), errors.RateLimited("testvendor", "slow", 429),
                    errors.Unavailable("testvendor", "timeout"))
    assert policy().call(request) == "ok"
    assert len(request.calls) == 4


@pytest.mark.parametrize("error", [
    errors.InvalidRequest("testvendor", "bad", 400), errors.Unauthorized("testvendor", "no", 401),
    errors.NotFound("testvendor", "gone", 404), errors.Conflict("testvendor", "exists"),
    errors.InvalidRequest("testvendor", "bad", 422),
])
def test_permanent_errors_are_not_retried(error):
    request = Flaky(error)
    with pytest.raises(type(error)):
        policy().call(request)
    assert len(request.calls) == 1


def test_other_exceptions_are_not_retried():
    request = Flaky(ValueError("our bug"))
    with pytest.raises(ValueError):
        policy().call(request)
    assert len(request.calls) == 1


def test_gives_up_after_attempts_with_the_last_error():
    request = Flaky(*[errors.Unavailable("testvendor", f"down {n}", 503) for n in range(10)])
    with pytest.raises(errors.Unavailable, match="down 2"):
        policy(attempts=3).call(request)
    assert len(request.calls) == 3


def test_retry_after_is_honoured_over_a_shorter_backoff():
    request = Flaky(errors.RateLimited("testvendor", "slow", 429, retry_after=0.3))
    assert policy().call(request) == "ok"
    assert request.calls[1] - request.calls[0] >= 0.3


def test_backoff_is_used_when_no_wait_is_asked():
    request = Flaky(errors.Unavailable("testvendor", "down", 503))
    policy(backoff=lambda state: 0.2).call(request)
    assert request.calls[1] - request.calls[0] >= 0.2


def test_a_wait_beyond_max_inline_wait_goes_up_at_once():
    request = Flaky(errors.RateLimited("testvendor", "locked out", 429, retry_after=600))
    with pytest.raises(errors.RateLimited) as caught:
        policy(max_inline_wait=30).call(request)
    assert len(request.calls) == 1
    assert caught.value.retry_after == 600  # the job queue reads it to schedule the retry


@pytest.mark.parametrize("error", [
    errors.Unavailable("testvendor", "down", 503), errors.Unavailable("testvendor", "boom", 500),
    errors.Unavailable("testvendor", "ReadTimeout"), errors.Unavailable("testvendor", "RemoteProtocolError"),
])
def test_a_non_idempotent_call_is_not_retried_after_a_failure_it_may_have_survived(error):
    request = Flaky(error)
    with pytest.raises(errors.Unavailable):
        policy().call(request, idempotent=False)
    assert len(request.calls) == 1  # the create may have happened: the job's retry searches before creating


def test_a_non_idempotent_call_is_retried_after_a_429():
    request = Flaky(errors.RateLimited("testvendor", "slow", 429), errors.RateLimited("testvendor", "slow", 429))
    assert policy().call(request, idempotent=False) == "ok"
    assert len(request.calls) == 3


def test_a_non_idempotent_call_still_sends_a_long_lockout_up():
    request = Flaky(errors.RateLimited("testvendor", "locked out", 429, retry_after=600))
    with pytest.raises(errors.RateLimited):
        policy(max_inline_wait=30).call(request, idempotent=False)
    assert len(request.calls) == 1


def test_a_message_that_may_have_been_sent_is_not_retried():
    request = Flaky(errors.MaybeSent("smtp", "no reply to the message"))
    with pytest.raises(errors.MaybeSent) as caught:
        policy().call(request)
    assert len(request.calls) == 1
    assert caught.value.transient  # for the job: it goes on past the send, whose record says it is done


class RecordingPacer:
    def __init__(self) -> None:
        self.reservations: list[tuple[str, float]] = []
        self.released: list[pacing.Slot] = []

    def reserve(self, key: str, interval: float) -> float:
        raise AssertionError("connectors pace with acquire/release")

    def acquire(self, key: str, rate: pacing.Rate) -> pacing.Slot:
        self.reservations.append((key, rate.interval))
        return pacing.Slot(key, rate, str(len(self.reservations)), 0.0)

    def release(self, slot: pacing.Slot, quota: pacing.Quota | None = None) -> None:
        self.released.append(slot)


def test_every_attempt_is_paced():
    pacer = RecordingPacer()
    request = Flaky(errors.Unavailable("testvendor", "down", 503))
    policy(requests=10, per_seconds=2, pacer=pacer).call(request, pace_key="testvendor_search")
    assert pacer.reservations == [("testvendor_search", 0.2), ("testvendor_search", 0.2)]
    assert [slot.token for slot in pacer.released] == ["1", "2"]  # the failed attempt's slot too
    policy(requests=10, per_seconds=2, pacer=pacer).call(Flaky())
    assert pacer.reservations[-1] == ("testvendor", 0.2)


def test_no_limit_means_no_pacing():
    pacer = RecordingPacer()
    policy(requests=None, pacer=pacer).call(Flaky())
    assert pacer.reservations == []


def test_outcomes_are_counted():
    def sample(outcome: str) -> float:
        return REGISTRY.get_sample_value("switchboard_vendor_calls_total",
                                         {"vendor": "countvendor", "outcome": outcome}) or 0.0
    before_ok, before_down = sample("ok"), sample("Unavailable")
    policy(vendor="countvendor").call(Flaky(errors.Unavailable("countvendor", "down", 503)))
    assert sample("ok") == before_ok + 1
    assert sample("Unavailable") == before_down + 1


def test_for_vendor_reads_the_yaml_limit_and_timeout(tmp_path):
    from tests.conftest import make_settings
    settings = make_settings(f"sqlite:///{tmp_path}/db.sqlite")
    pacer = MemoryPacer()
    hubspot = for_vendor("hubspot", settings, pacer=pacer)
    # The YAML rate itself, no margin: the pacer keeps the vendor's window exactly (tests/unit/test_pacing.py).
    assert hubspot.requests == 10_000 and hubspot.per_seconds == pytest.approx(1)
    assert hubspot.pacer is pacer
    assert hubspot.timeout == settings.config.timeouts_seconds
    search = for_vendor("hubspot", settings, limit_key="hubspot_search", pacer=pacer)
    assert search.vendor == "hubspot" and search.requests == 10_000
    assert for_vendor("smtp", settings, pacer=pacer).requests is None


def test_quota_reads_hubspot_and_aircall_headers_and_nothing_else():
    assert quota({"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "7",
                  "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}) == pacing.Quota(7)
    assert quota({"x-aircallapi-limit": "60", "x-aircallapi-remaining": "0", "x-aircallapi-reset": "1030"},
                 now=1000.0) == pacing.Quota(0, 30.0)
    assert quota({"X-AircallApi-Remaining": "3", "X-AircallApi-Reset": "1700000030000"},  # milliseconds
                 now=1_700_000_000.0) == pacing.Quota(3, 30.0)
    assert quota({"Content-Type": "application/json"}) is None  # HappyFox
    assert quota({"X-HubSpot-RateLimit-Remaining": "many"}) is None


def test_a_call_hands_the_vendors_report_to_the_pacer():
    # The answer's headers reach the schedule: HubSpot saying 0 remaining while the log knows of one call holds
    # the rest of the window as spent, so the next slot waits a full window.
    clock = [1000.0]
    pacer = MemoryPacer(clock=lambda: clock[0])
    paced = Policy(vendor="hubspot", requests=100, per_seconds=10, pacer=pacer)

    def answer() -> str:
        paced.observe({"X-HubSpot-RateLimit-Remaining": "0"})
        return "ok"
    assert paced.call(answer) == "ok"
    slot = pacer.acquire("hubspot", pacing.Rate(100, 10))
    assert slot.delay == pytest.approx(10)
