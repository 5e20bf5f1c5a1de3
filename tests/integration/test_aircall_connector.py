"""AircallClient against the Aircall fake over real HTTP: every method, then the faults the policy must absorb
or surface (docs/vendors/aircall.md)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from tenacity import wait_fixed

from connectors import pacing
from connectors.aircall import AircallClient
from connectors.errors import Unauthorized, Unavailable
from connectors.policy import Policy
from sandbox.aircall import simulate_call


def fast_policy(**overrides) -> Policy:
    options = {"timeout": 2.0, "attempts": 4, "backoff": wait_fixed(0.01)}
    return Policy("aircall", **{**options, **overrides})


def client_for(sandbox, policy: Policy | None = None, api_token: str | None = None) -> AircallClient:
    creds = sandbox.credentials
    return AircallClient(sandbox.base_url, creds["aircall_api_id"], api_token or creds["aircall_api_token"],
                         policy or fast_policy())


def simulate(sandbox, **options) -> dict:
    body = {"direction": "inbound", "raw_digits": "+36 30 123 4567", "duration": 95, **options}
    return sandbox.http.post("/_sandbox/aircall/calls", json=body).raise_for_status().json()["call"]


def settled_calls(sandbox) -> list[dict]:
    """Aircall's calls once the fake has answered them all: a delayed request is logged when the fake finishes it,
    after the client gave up."""
    sandbox.wait_idle()
    return sandbox.calls("aircall")


# ---------------------------------------------------------------- methods

def test_contacts_round_trip(sandbox):
    client = client_for(sandbox)
    contact = client.create_contact("Kata", "Kovacs", emails=["Kata@Example.com"], phones=["+36 30 123 4567"])
    assert contact.first_name == "Kata" and contact.phone_numbers[0].value == "+36 30 123 4567"

    assert [c.id for c in client.search_contacts(email="kata@example.com")] == [contact.id]
    assert [c.id for c in client.search_contacts(phone="+36301234567")] == [contact.id]
    assert client.search_contacts(email="nobody@example.com") == []

    updated = client.update_contact(contact.id, last_name="Kiss", information="VIP")
    assert updated.last_name == "Kiss"
    assert client.get_contact(contact.id).raw["information"] == "VIP"
    assert ("POST", f"/v1/contacts/{contact.id}") in {(c["method"], c["path"]) for c in sandbox.calls("aircall")}

    assert client.delete_contact(contact.id) == "deleted"
    assert client.delete_contact(contact.id) == "gone"
    assert sandbox.state("aircall")["contacts"] == {}


def test_search_needs_a_key(sandbox):
    with pytest.raises(ValueError):
        client_for(sandbox).search_contacts()


def test_get_call_carries_user_number_and_matched_contact(sandbox):
    client = client_for(sandbox)
    contact = client.create_contact("Kata", "Kovacs", phones=["+36 30 123 4567"])
    made = simulate(sandbox, duration=120)
    call = client.get_call(made["id"])
    assert call.id == str(made["id"]) and call.raw["direction"] == "inbound" and call.raw["status"] == "done"
    assert call.raw["contact"]["id"] == int(contact.id)
    assert call.raw["user"]["name"] and call.raw["number"]["digits"]
    assert call.recording and call.voicemail is None


def test_calls_pages_through_everything_since(sandbox):
    running = sandbox.running.sandbox
    made = [simulate_call(running, "outbound", f"+3630000{i:04d}", 30) for i in range(53)]  # 2 pages of 50
    client = client_for(sandbox)
    assert [int(c.id) for c in client.calls()] == [c["id"] for c in made]
    assert len([c for c in sandbox.calls("aircall") if c["path"] == "/v1/calls"]) == 2
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert list(client.calls(since=future)) == []


def test_delete_recording_and_voicemail_then_gone(sandbox):
    client = client_for(sandbox)
    answered = simulate(sandbox)
    missed = simulate(sandbox, answered=False, voicemail=True)
    assert missed["voicemail"] and missed["recording"] is None

    assert requests.get(answered["recording"], timeout=5).headers["Content-Type"] == "audio/mpeg"
    assert client.delete_recording(answered["id"]) == "deleted"
    assert client.get_call(answered["id"]).recording is None
    assert requests.get(answered["recording"], timeout=5).status_code == 404
    assert client.delete_recording(answered["id"]) == "gone"
    assert client.delete_voicemail(missed["id"]) == "deleted"
    assert client.delete_voicemail(missed["id"]) == "gone"
    assert client.delete_recording(999_999) == "gone"
    assert client.delete_contact(999_999) == "gone"


def test_search_calls_finds_only_that_number_on_every_page(sandbox):
    running = sandbox.running.sandbox
    mine = [simulate_call(running, "inbound", "+36 30 123 4567", 30) for _ in range(51)]  # 2 pages of 50
    simulate_call(running, "outbound", "+36 70 999 8888", 30)
    simulate_call(running, "inbound", "anonymous", 30, answered=False)
    client = client_for(sandbox)
    assert [int(c.id) for c in client.search_calls("+36301234567")] == [c["id"] for c in mine]
    searches = [c for c in sandbox.calls("aircall") if c["path"] == "/v1/calls/search"]
    assert len(searches) == 2 and not any(c["path"] == "/v1/calls" for c in sandbox.calls("aircall"))
    assert list(client.search_calls("+36701234567")) == []
    assert list(client.search_calls("06301234567")) == []  # Aircall keeps the international form
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert list(client.search_calls("+36301234567", since=future)) == []
    with pytest.raises(ValueError):
        client.search_calls("")


def test_fake_call_search_filters(sandbox):
    running = sandbox.running.sandbox
    inbound = simulate_call(running, "inbound", "+36 30 123 4567", 30)
    outbound = simulate_call(running, "outbound", "+36 30 123 4567", 30)
    creds = sandbox.credentials
    auth = (creds["aircall_api_id"], creds["aircall_api_token"])

    def ids(**params) -> list[int]:
        answer = requests.get(f"{sandbox.base_url}/v1/calls/search", params=params, auth=auth, timeout=5)
        answer.raise_for_status()
        return [c["id"] for c in answer.json()["calls"]]

    assert ids(phone_number="+36301234567", direction="outbound") == [outbound["id"]]
    assert ids(direction="inbound") == [inbound["id"]]
    assert ids(user_id=outbound["user"]["id"]) == [inbound["id"], outbound["id"]]
    assert ids(user_id=1) == []


def test_archive_call_then_again_and_unknown_is_gone(sandbox):
    client = client_for(sandbox)
    made = simulate(sandbox)
    assert client.archive_call(made["id"]) == "archived"
    assert client.get_call(made["id"]).archived is True
    assert client.archive_call(made["id"]) == "archived"  # archiving twice is harmless
    assert client.archive_call(999_999) == "gone"
    assert ("PUT", f"/v1/calls/{made['id']}/archive") in {(c["method"], c["path"]) for c in sandbox.calls("aircall")}


def test_a_deleted_contact_leaves_its_calls(sandbox):
    client = client_for(sandbox)
    contact = client.create_contact("Kata", "Kovacs", emails=["kata@example.com"], phones=["+36 30 123 4567"])
    made = simulate(sandbox)
    assert client.get_call(made["id"]).raw["contact"]["id"] == int(contact.id)
    assert client.delete_contact(contact.id) == "deleted"
    assert client.get_call(made["id"]).raw["contact"] is None
    assert "kata@example.com" not in str(sandbox.state("aircall")["calls"])


# ---------------------------------------------------------------- the fake's own rules

def test_fake_auth_answers_401_without_header_and_403_for_bad_credentials(sandbox):
    missing = requests.get(f"{sandbox.base_url}/v1/calls", timeout=5)
    assert missing.status_code == 401 and missing.json() == {"message": "Unauthorized"}
    wrong = requests.get(f"{sandbox.base_url}/v1/calls", auth=("x", "y"), timeout=5)
    assert wrong.status_code == 403 and wrong.json() == {"message": "Forbidden"}
    assert "X-AircallApi-Limit" in wrong.headers


def test_fake_rate_limit_answers_429_with_headers(sandbox):
    sandbox.limits(aircall={"requests": 3, "per_seconds": 1})
    creds = sandbox.credentials
    auth = (creds["aircall_api_id"], creds["aircall_api_token"])
    answers = [requests.get(f"{sandbox.base_url}/v1/calls", auth=auth, timeout=5) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-AircallApi-Limit"] == "3"
    assert answers[0].headers["X-AircallApi-Remaining"] == "2"
    limited = answers[3]
    assert limited.headers["X-AircallApi-Remaining"] == "0"
    assert 0 <= int(limited.headers["X-AircallApi-Reset"]) - time.time() <= 2


def test_paced_client_never_trips_the_fake_limit(sandbox):
    # Paced at exactly the fake's limit: call n+3 goes a full window after call n was answered, so no jitter can
    # put it into call n's window (connectors/pacing.py).
    client = client_for(sandbox, fast_policy(requests=3, per_seconds=1, pacer=pacing.MemoryPacer()))
    sandbox.limits(aircall={"requests": 3, "per_seconds": 1})
    for _ in range(7):
        assert client.delete_contact(424242) == "gone"
    statuses = [c["status"] for c in sandbox.calls("aircall")]
    assert len(statuses) == 7 and 429 not in statuses


# ---------------------------------------------------------------- faults

def test_429_burst_is_absorbed(sandbox):
    sandbox.fault(service="aircall", method="GET", path="/v1/calls", status=429, times=2, retry_after=0.1)
    assert list(client_for(sandbox).calls()) == []
    assert [c["status"] for c in sandbox.calls("aircall")] == [429, 429, 200]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(sandbox, status):
    contact = client_for(sandbox).create_contact("A", "B", phones=["+3611111111"])
    sandbox.clear_calls()
    sandbox.fault(service="aircall", method="GET", path="/v1/contacts/*", status=status, times=2)
    assert client_for(sandbox).get_contact(contact.id).id == contact.id
    assert [c["status"] for c in sandbox.calls("aircall")] == [status, status, 200]


def test_archive_is_retried_after_503(sandbox):
    made = simulate(sandbox)
    sandbox.clear_calls()
    sandbox.fault(service="aircall", method="PUT", path="/v1/calls/*", status=503, times=2)
    assert client_for(sandbox).archive_call(made["id"]) == "archived"
    assert [c["status"] for c in sandbox.calls("aircall")] == [503, 503, 200]
    assert sandbox.state("aircall")["calls"][str(made["id"])]["archived"] is True


def test_call_search_429_is_absorbed(sandbox):
    sandbox.fault(service="aircall", method="GET", path="/v1/calls/search", status=429, times=1, retry_after=0.1)
    assert list(client_for(sandbox).search_calls("+36301234567")) == []
    assert [c["status"] for c in sandbox.calls("aircall")] == [429, 200]


def test_bad_credentials_are_unauthorized_at_once(sandbox):
    with pytest.raises(Unauthorized) as raised:
        client_for(sandbox, api_token="wrong").get_call(1)
    assert raised.value.status == 403
    assert len(sandbox.calls("aircall")) == 1


def test_401_is_unauthorized_at_once(sandbox):
    sandbox.fault(service="aircall", path="/v1/calls/*", status=401)
    with pytest.raises(Unauthorized) as raised:
        client_for(sandbox).get_call(1)
    assert raised.value.status == 401
    assert len(sandbox.calls("aircall")) == 1


def test_delay_past_timeout_is_retried_then_unavailable(sandbox):
    sandbox.fault(service="aircall", path="/v1/calls/*", delay=0.6, times=2)
    client = client_for(sandbox, fast_policy(timeout=0.2, attempts=2))
    with pytest.raises(Unavailable):
        client.get_call(1)
    assert len(settled_calls(sandbox)) == 2


def test_delay_once_then_success(sandbox):
    made = simulate(sandbox)
    sandbox.clear_calls()
    sandbox.fault(service="aircall", path="/v1/calls/*", delay=0.6, times=1)
    assert client_for(sandbox, fast_policy(timeout=0.2)).get_call(made["id"]).id == str(made["id"])
    assert sorted(c["status"] for c in settled_calls(sandbox)) == [200, 200]


def test_dropped_connection_is_retried(sandbox):
    sandbox.fault(service="aircall", method="DELETE", path="/v1/contacts/*", drop=True)
    assert client_for(sandbox).delete_contact(31337) == "gone"
    assert len(settled_calls(sandbox)) == 2


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503}, {"drop": True}, {"delay": 0.6}],
                         ids=["500", "503", "drop", "timeout"])
def test_a_contact_create_that_fails_is_not_retried_inline(sandbox, fault):
    # Aircall takes no idempotency key: a retried create could make a second contact.
    sandbox.fault(service="aircall", method="POST", path="/v1/contacts", times=1, **fault)
    with pytest.raises(Unavailable):
        client_for(sandbox, fast_policy(timeout=0.2)).create_contact("A", "B", phones=["+3611111111"])
    assert len(settled_calls(sandbox)) == 1
    # Only a delayed create is carried out: the fake answers after the client gave up.
    assert len(sandbox.state("aircall")["contacts"]) == (1 if "delay" in fault else 0)


def test_a_contact_create_answered_429_is_retried_once_made(sandbox):
    sandbox.fault(service="aircall", method="POST", path="/v1/contacts", status=429, times=1, retry_after=0.1)
    assert client_for(sandbox).create_contact("A", "B", phones=["+3611111111"]).id
    assert [c["status"] for c in sandbox.calls("aircall")] == [429, 201]
    assert len(sandbox.state("aircall")["contacts"]) == 1


def test_from_settings_talks_to_the_sandbox(settings, sandbox):
    made = simulate(sandbox)
    client = AircallClient.from_settings(settings)
    assert client.get_call(made["id"]).id == str(made["id"])
    assert client.policy.timeout == settings.config.timeouts_seconds


def test_console_shows_aircall_and_gmail(sandbox):
    simulate(sandbox)
    sandbox.http.post("/_sandbox/gmail/messages", json={"from": "a@example.com", "to": "b@example.com",
                                                       "subject": "Hello", "body": "Hi"}).raise_for_status()
    page = sandbox.http.get("/").raise_for_status().text
    assert "aircall" in page and "gmail" in page and "Hello" in page
    assert sandbox.http.post("/_sandbox/gmail/messages", json={"subject": "no sender"}).status_code == 400
