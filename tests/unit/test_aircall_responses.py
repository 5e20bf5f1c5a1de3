"""Fast checks of AircallClient's reading of answers the sandbox does not vary: the reset header in seconds or
milliseconds, 401/403 mapping, and reset headers on non-429 answers (docs/vendors/aircall.md#auth,
docs/vendors/aircall.md#rate-limits)."""
from __future__ import annotations

import time

import pytest
import responses
from tenacity import wait_fixed

from connectors.aircall import AircallClient
from connectors.errors import BadAnswer, InvalidRequest, RateLimited, Unauthorized
from connectors.policy import Policy

BASE = "https://api.aircall.io"


def client(attempts: int = 2, max_inline_wait: float = 30.0) -> AircallClient:
    policy = Policy("aircall", timeout=1, attempts=attempts, backoff=wait_fixed(0), max_inline_wait=max_inline_wait)
    return AircallClient(BASE, "id", "token", policy)


def limited(reset: str) -> dict:
    return {"X-AircallApi-Limit": "60", "X-AircallApi-Remaining": "0", "X-AircallApi-Reset": reset}


@pytest.mark.parametrize("scale", [1, 1000], ids=["seconds", "milliseconds"])
@responses.activate
def test_reset_header_in_seconds_or_milliseconds_becomes_the_wait(scale):
    reset = str(int((time.time() + 120) * scale))  # past max_inline_wait: the error goes up with its wait
    responses.get(f"{BASE}/v1/calls/1", status=429, json={"message": "Too Many Requests"}, headers=limited(reset))
    with pytest.raises(RateLimited) as raised:
        client().get_call(1)
    assert 100 < raised.value.retry_after <= 121
    assert len(responses.calls) == 1  # a wait longer than the inline limit is the job queue's to wait


@responses.activate
def test_short_reset_is_waited_inline_and_retried():
    reset = str(int(time.time()))  # already due
    responses.get(f"{BASE}/v1/calls/1", status=429, json={"message": "Too Many Requests"}, headers=limited(reset))
    responses.get(f"{BASE}/v1/calls/1", json={"call": {"id": 1}})
    assert client().get_call(1).id == "1"
    assert len(responses.calls) == 2


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_auth_failures_are_unauthorized(status):
    responses.get(f"{BASE}/v1/contacts/5", status=status, json={"message": "Forbidden"})
    with pytest.raises(Unauthorized) as raised:
        client(attempts=3).get_contact(5)
    assert raised.value.status == status and "Forbidden" in str(raised.value)
    assert len(responses.calls) == 1


@responses.activate
def test_reset_header_on_a_server_error_does_not_stretch_the_backoff():
    far = str(int(time.time() + 3600))
    responses.get(f"{BASE}/v1/contacts/5", status=503, json={"message": "busy"}, headers=limited(far))
    responses.get(f"{BASE}/v1/contacts/5", json={"contact": {"id": 5}})
    assert client().get_contact(5).id == "5"


@responses.activate
def test_application_error_body_is_read():
    responses.post(f"{BASE}/v1/contacts", status=400,
                   json={"error": "phone_numbers is mandatory", "troubleshoot": "see docs"})
    with pytest.raises(InvalidRequest) as raised:
        client().create_contact("A", "B")
    assert "phone_numbers is mandatory" in str(raised.value)
    sent = responses.calls[0].request
    assert sent.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_an_answer_of_the_wrong_shape_is_a_permanent_error_naming_the_field_not_the_value():
    secret = "https://secret.example.com/recording.mp3"
    responses.get(f"{BASE}/v1/calls/1", json={"call": {"id": 1, "started_at": "yesterday", "recording": [secret]}})
    with pytest.raises(BadAnswer) as raised:
        client(attempts=3).get_call(1)
    assert str(raised.value) == "aircall: unexpected AircallCallRecord: started_at int_parsing; recording string_type"
    assert not raised.value.transient and secret not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert len(responses.calls) == 1  # asking again gets the same answer: not retried


@responses.activate
def test_a_record_keeps_the_whole_answer_for_an_access_export():
    answer = {"id": 7, "started_at": 1764000000, "recording": None, "tags": [{"name": "vip"}], "archived": True}
    responses.get(f"{BASE}/v1/calls/7", json={"call": answer})
    call = client().get_call(7)
    assert (call.id, call.archived, call.recording) == ("7", True, None)
    assert call.started is not None and call.started.timestamp() == 1764000000
    assert call.raw == answer


@responses.activate
def test_a_missing_wrapper_is_a_bad_answer():
    responses.get(f"{BASE}/v1/contacts/5", json={"message": "ok"})
    with pytest.raises(BadAnswer, match="unexpected AircallContactRecord: model_type$"):
        client().get_contact(5)


@responses.activate
def test_contact_details_use_the_sub_resources_and_only_the_put_is_retried_inline():
    """`PUT .../phone_details/:id` replaces in place and is safe to repeat; `POST .../email_details` adds, so an
    answer lost to a 5xx is left to the job's retry, which reads the contact first (docs/vendors/aircall.md#contacts)."""
    put = f"{BASE}/v1/contacts/7/phone_details/9"
    responses.put(put, status=503, json={"error": "down"})
    responses.put(put, json={"contact": {"id": 7}})
    client(attempts=3).update_detail(7, "phone", 9, "+36209876543", label="Mobile")
    assert [c.request.method for c in responses.calls] == ["PUT", "PUT"]
    assert responses.calls[1].request.body == b'{"value": "+36209876543", "label": "Mobile"}'

    responses.post(f"{BASE}/v1/contacts/7/email_details", status=503, json={"error": "down"})
    with pytest.raises(Exception, match="503"):
        client(attempts=3).add_detail(7, "email", "uj.cim@example.com")
    assert [c.request.method for c in responses.calls] == ["PUT", "PUT", "POST"]  # not sent twice

    responses.delete(f"{BASE}/v1/contacts/7/email_details/4", status=404, json={"error": "Detail not found"})
    assert client().delete_detail(7, "email", 4) == "gone"
    with pytest.raises(ValueError):
        client().add_detail(7, "fax", "1")
