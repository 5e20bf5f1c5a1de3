"""GmailClient against the Gmail fake over real HTTP (docs/vendors/gmail.md), and the
production token path as far as it goes without Google's token server."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from tenacity import wait_fixed

from connectors.errors import Unauthorized, Unavailable
from connectors.gmail import SCOPES, GmailClient, ServiceAccountToken
from connectors.policy import Policy
from core.settings import SANDBOX_GMAIL_TOKEN, ConfigError
from sandbox.gmail import add_message

CUSTOMER = "kata.kovacs@example.com"


def fast_policy(**overrides) -> Policy:
    return Policy("gmail", **{"timeout": 2.0, "attempts": 4, "backoff": wait_fixed(0.01), **overrides})


def client_for(sandbox, policy: Policy | None = None, token: str = SANDBOX_GMAIL_TOKEN, user: str | None = None,
               page_size: int = 500) -> GmailClient:
    return GmailClient(sandbox.base_url, user or sandbox.credentials["gmail_user"], lambda: token,
                       policy or fast_policy(), page_size=page_size)


def settled_calls(sandbox) -> list[dict]:
    """Gmail's calls once the fake is done with them all: a delayed or dropped request is logged when the server is
    done with it, maybe after the client moved on."""
    sandbox.wait_idle()
    return sandbox.calls("gmail")


def mailbox(sandbox) -> dict[str, str]:
    """Three messages about the customer, one not; their ids by name."""
    running, support = sandbox.running.sandbox, sandbox.credentials["gmail_user"]
    return {"in": add_message(running, f"Kata <{CUSTOMER}>", support, "Hiba", "A termék nem indul."),
            "out": add_message(running, support, CUSTOMER, "Re: Hiba", "Köszönjük a bejelentést."),
            "cc": add_message(running, support, f"Other <other@example.com>, {CUSTOMER}", "Összesítő", "..."),
            "other": add_message(running, "other@example.com", support, "Más", "Nem a vevőről.")}


# ---------------------------------------------------------------- methods

def test_messages_about_finds_from_and_to(sandbox):
    ids = mailbox(sandbox)
    client = client_for(sandbox)
    assert set(client.messages_about(CUSTOMER)) == {ids["in"], ids["out"], ids["cc"]}
    assert client.message_ids(f"from:{CUSTOMER}") == [ids["in"]]
    assert client.messages_about("nobody@example.com") == []  # `messages` absent from the answer


def test_message_ids_pages_through_everything(sandbox):
    ids = mailbox(sandbox)
    client = client_for(sandbox, page_size=1)
    assert set(client.message_ids("")) == set(ids.values())
    lists = [c for c in sandbox.calls("gmail") if c["path"].endswith("/messages")]
    assert len(lists) == 4 and "pageToken=" in lists[-1]["query"]


def test_get_message_has_headers_and_snippet(sandbox):
    ids = mailbox(sandbox)
    message = client_for(sandbox).get_message(ids["in"])
    headers = {h["name"]: h["value"] for h in message.raw["payload"]["headers"]}
    assert headers["From"] == f"Kata <{CUSTOMER}>" and headers["Subject"] == "Hiba"
    assert message.raw["snippet"] == "A termék nem indul."
    assert "body" not in message.raw["payload"]  # metadata only: an export lists mail, it does not copy it
    assert message.id == ids["in"] and message.received is not None and message.received.tzinfo is not None


def test_delete_messages_removes_them_and_ignores_unknown_ids(sandbox):
    ids = mailbox(sandbox)
    client = client_for(sandbox)
    about = client.messages_about(CUSTOMER)
    assert client.delete_messages(about + ["0000unknown"]) == 4
    assert set(sandbox.state("gmail")["messages"]) == {ids["other"]}
    assert client.delete_messages([]) == 0
    assert client.delete_message(ids["other"]) == "deleted"
    assert client.delete_message(ids["other"]) == "gone"


def test_delete_messages_splits_batches_of_1000(sandbox):
    client = client_for(sandbox)
    assert client.delete_messages([f"{i:016x}" for i in range(2001)]) == 2001
    batches = [c for c in sandbox.calls("gmail") if c["path"].endswith("/batchDelete")]
    assert [c["status"] for c in batches] == [204, 204, 204]


def test_me_is_the_configured_user(sandbox):
    ids = mailbox(sandbox)
    assert ids["in"] in client_for(sandbox, user="me").messages_about(CUSTOMER)


# ---------------------------------------------------------------- the fake's own rules

def test_fake_rejects_more_than_1000_ids_with_googles_error(sandbox):
    url = f"{sandbox.base_url}/gmail/v1/users/me/messages/batchDelete"
    answer = httpx.post(url, json={"ids": ["x"] * 1001}, headers={"Authorization": f"Bearer {SANDBOX_GMAIL_TOKEN}"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT" and "1000" in error["message"]


def test_fake_rate_limit(sandbox):
    sandbox.limits(gmail={"requests": 2, "per_seconds": 1})
    headers = {"Authorization": f"Bearer {SANDBOX_GMAIL_TOKEN}"}
    answers = [httpx.get(f"{sandbox.base_url}/gmail/v1/users/me/messages", headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"]["status"] == "RESOURCE_EXHAUSTED" and "Retry-After" in answers[2].headers


# ---------------------------------------------------------------- faults

def test_bad_token_is_unauthorized_at_once(sandbox):
    with pytest.raises(Unauthorized) as raised:
        client_for(sandbox, token="wrong").message_ids("")
    assert raised.value.status == 401
    assert len(sandbox.calls("gmail")) == 1


def test_other_mailbox_is_delegation_denied(sandbox):
    with pytest.raises(Unauthorized) as raised:
        client_for(sandbox, user="ceo@example.com").message_ids("")
    assert raised.value.status == 403 and "Delegation denied" in raised.value.message
    assert len(sandbox.calls("gmail")) == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_answers_are_retried(sandbox, status):
    mailbox(sandbox)
    sandbox.fault(service="gmail", method="GET", path="/gmail/v1/users/*", status=status, times=2,
                  retry_after=0 if status == 429 else None)
    assert len(client_for(sandbox).messages_about(CUSTOMER)) == 3
    assert [c["status"] for c in sandbox.calls("gmail")] == [status, status, 200]


def test_timeouts_then_unavailable(sandbox):
    sandbox.fault(service="gmail", path="/gmail/v1/users/*", delay=0.6, times=2)
    with pytest.raises(Unavailable):
        client_for(sandbox, fast_policy(timeout=0.2, attempts=2)).message_ids("")
    assert len(settled_calls(sandbox)) == 2


def test_dropped_connection_is_retried(sandbox):
    sandbox.fault(service="gmail", method="POST", path="/gmail/v1/users/*", drop=True)
    assert client_for(sandbox).delete_messages(["abc"]) == 1
    assert [c["path"].endswith("/batchDelete") for c in settled_calls(sandbox)] == [True, True]


# ---------------------------------------------------------------- wiring and the production token

def test_from_settings_uses_the_sandbox_bearer(settings, sandbox):
    mailbox(sandbox)
    client = GmailClient.from_settings(settings)
    assert len(client.messages_about(CUSTOMER)) == 3


def test_service_account_needs_a_key_file(tmp_path):
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        ServiceAccountToken(tmp_path / "missing.json", "support@example.com")


def _key_file(tmp_path) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"type": "service_account", "project_id": "p", "private_key_id": "k",
                                "private_key": pem, "client_email": "switchboard@p.iam.gserviceaccount.com",
                                "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}))
    return str(path)


def test_service_account_impersonates_the_mailbox_with_the_full_scope(tmp_path):
    token = ServiceAccountToken(_key_file(tmp_path), "support@example.com")
    assert token.credentials._subject == "support@example.com"
    assert list(token.credentials._scopes) == SCOPES
    with pytest.raises(ConfigError, match="GMAIL_USER"):
        ServiceAccountToken(_key_file(tmp_path), "")


def test_service_account_token_is_reused_while_valid(tmp_path):
    token = ServiceAccountToken(_key_file(tmp_path), "support@example.com")
    token.credentials.token = "ya29.still-valid"
    token.credentials.expiry = (datetime.now(timezone.utc) + timedelta(minutes=30)).replace(tzinfo=None)
    assert token() == "ya29.still-valid"  # no refresh: nothing reached Google's token server
