"""The sandbox's fake of Google's service-account token endpoint (sandbox/google.py): the production Gmail sign-in
(connectors/gmail.py: google-auth, a key file, domain-wide delegation) against it unchanged, token expiry and
refresh, and every refusal a misconfigured key, mailbox or scope meets."""
from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.auth import _helpers as google_helpers
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2 import service_account
from joserfc import jwt
from joserfc.jwk import RSAKey

from connectors.errors import Unauthorized
from connectors.gmail import SCOPES, GmailClient, ServiceAccountToken
from core.settings import SANDBOX_GMAIL_TOKEN
from sandbox import google
from sandbox.gmail import add_message
from tests.conftest import SandboxClient, _in_use, make_settings
from tests.integration.test_gmail_connector import fast_policy
from tests.integration.test_run import Process, free_port

MAILBOX = "support@example.com"  # the sandbox's default GMAIL_USER
CUSTOMER = "kata.kovacs@example.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("google")


@pytest.fixture(scope="module")
def google_server(key_dir: Path) -> Iterator[Any]:
    from sandbox.server import start
    running = start("127.0.0.1", 0, None, google_key=key_dir / "sa.json")
    yield running
    running.stop()


@pytest.fixture
def gsandbox(google_server: Any) -> Iterator[SandboxClient]:
    """The service-account sandbox, reset (issued tokens forgotten, lifetime back to an hour), limits lifted."""
    client = SandboxClient(google_server)
    client.reset()
    client.limits(**{name: None for name in google_server.sandbox.vendors})
    yield client
    client.http.close()


@pytest.fixture
def key_file(gsandbox: SandboxClient, key_dir: Path) -> Path:
    return key_dir / "sa.json"


def account(sandbox: SandboxClient) -> dict[str, Any]:
    return sandbox.http.get("/_sandbox/google").raise_for_status().json()


def lifetime(sandbox: SandboxClient, seconds: int) -> None:
    sandbox.http.post("/_sandbox/google", json={"token_seconds": seconds}).raise_for_status()


def gmail(sandbox: SandboxClient, token: str, user: str = MAILBOX) -> httpx.Response:
    return httpx.get(f"{sandbox.base_url}/gmail/v1/users/{user}/messages",
                     headers={"Authorization": f"Bearer {token}"})


def assertion(key_file: Path, **claims: Any) -> str:
    """A JWT-bearer assertion as google-auth builds it, signed with the key file's key; `claims` override."""
    info = json.loads(key_file.read_text())
    now = int(time.time())
    body = {"iss": info["client_email"], "sub": MAILBOX, "scope": SCOPES[0], "aud": google.GOOGLE_TOKEN_URI,
            "iat": now, "exp": now + 3600, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    key = RSAKey.import_key(info["private_key"])
    return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": info["private_key_id"]}, body, key)


def token_request(sandbox: SandboxClient, signed: str, grant_type: str = JWT_BEARER) -> httpx.Response:
    return httpx.post(f"{sandbox.base_url}/token", data={"grant_type": grant_type, "assertion": signed})


def other_key_file(key_file: Path, tmp_path: Path) -> Path:
    """The same service account's file with another private key: what a rotated or mistyped key looks like."""
    path = tmp_path / "other.json"
    google.write_key_file(path, "http://unused/token")
    info = json.loads(key_file.read_text())
    info["private_key"] = json.loads(path.read_text())["private_key"]
    path.unlink()
    path.write_text(json.dumps(info))
    return path


# ---------------------------------------------------------------- the key file

def test_key_file_is_written_as_google_writes_one(key_file, gsandbox):
    info = json.loads(key_file.read_text())
    assert info["type"] == "service_account"
    assert info["client_email"].endswith(".iam.gserviceaccount.com") and info["private_key_id"]
    assert info["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert info["token_uri"] == f"{gsandbox.base_url}/token"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # a secret, even a sandbox's
    shown = account(gsandbox)
    assert shown["client_email"] == info["client_email"] and shown["token_uri"] == info["token_uri"]


def test_an_existing_key_file_is_used_as_it_is(key_file, tmp_path):
    from sandbox.server import start
    before = key_file.read_text()
    running = start("127.0.0.1", 0, None, google_key=key_file)
    try:
        assert key_file.read_text() == before  # not rewritten, though this sandbox has another port
        assert running.app.extensions["google"].client_email == json.loads(before)["client_email"]
    finally:
        running.stop()
    broken = tmp_path / "user.json"
    broken.write_text(json.dumps({"type": "authorized_user", "client_id": "x"}))
    with pytest.raises(ValueError, match="service_account"):
        start("127.0.0.1", 0, None, google_key=broken)


# ---------------------------------------------------------------- the production sign-in, unchanged

def test_production_gmail_client_signs_in_with_the_key_file(key_file, gsandbox, sqlite_url):
    add_message(gsandbox.running.sandbox, f"Kata <{CUSTOMER}>", MAILBOX, "Hiba", "A termék nem indul.")
    loaded = make_settings(sqlite_url, gsandbox, google_application_credentials=key_file, gmail_user=MAILBOX)
    for settings in _in_use(loaded):
        client = GmailClient.from_settings(settings)
        assert isinstance(client.token, ServiceAccountToken)  # the production path, not the sandbox bearer
        assert len(client.messages_about(CUSTOMER)) == 1
        assert client.delete_messages(client.messages_about(CUSTOMER)) == 1
        assert gsandbox.state("gmail")["messages"] == {}
    assert account(gsandbox)["grants"] == 1  # one token for all four calls: an hour long, reused
    assert [c["status"] for c in gsandbox.calls("google")] == [200]
    assert {c["status"] for c in gsandbox.calls("gmail")} == {200, 204}


def test_the_fixed_sandbox_bearer_is_refused_in_this_mode(gsandbox):
    answer = gmail(gsandbox, SANDBOX_GMAIL_TOKEN)
    assert answer.status_code == 401 and answer.json()["error"]["status"] == "UNAUTHENTICATED"


def test_an_issued_token_expires(key_file, gsandbox):
    lifetime(gsandbox, 1)
    answer = token_request(gsandbox, assertion(key_file)).json()
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 1
    assert gmail(gsandbox, answer["access_token"]).status_code == 200
    time.sleep(1.2)
    expired = gmail(gsandbox, answer["access_token"])
    assert expired.status_code == 401 and expired.json()["error"]["code"] == 401


def test_google_auth_refreshes_before_the_token_expires(key_file, gsandbox):
    # google-auth counts a token expired REFRESH_THRESHOLD before its end: this lifetime leaves it 2 s of use.
    lifetime(gsandbox, int(google_helpers.REFRESH_THRESHOLD.total_seconds()) + 2)
    token = ServiceAccountToken(key_file, MAILBOX)
    first = token()
    assert token() == first and account(gsandbox)["grants"] == 1  # reused while valid
    time.sleep(2.2)
    second = token()
    assert second != first and account(gsandbox)["grants"] == 2   # refreshed, through /token again
    assert gmail(gsandbox, second).status_code == 200


def test_a_short_lifetime_means_a_new_token_for_every_call(key_file, gsandbox):
    lifetime(gsandbox, 1)
    client = GmailClient(gsandbox.base_url, MAILBOX, ServiceAccountToken(key_file, MAILBOX),
                         fast_policy())
    for _ in range(3):
        assert client.message_ids("") == []
        time.sleep(1.1)  # each token dead before the next call: only a refresh can get it through
    assert account(gsandbox)["grants"] == 3
    assert [c["status"] for c in gsandbox.calls("gmail")] == [200, 200, 200]


def test_a_reset_forgets_issued_tokens_and_restores_the_lifetime(key_file, gsandbox):
    lifetime(gsandbox, 5)
    issued = token_request(gsandbox, assertion(key_file)).json()["access_token"]
    gsandbox.reset()
    assert gmail(gsandbox, issued).status_code == 401
    assert account(gsandbox)["token_seconds"] == 3600 and account(gsandbox)["grants"] == 0


# ---------------------------------------------------------------- refusals

def test_wrong_signature_is_invalid_grant(key_file, gsandbox, tmp_path):
    answer = token_request(gsandbox, assertion(other_key_file(key_file, tmp_path)))
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    with pytest.raises(Unauthorized, match="Invalid JWT Signature"):
        ServiceAccountToken(other_key_file(key_file, tmp_path / "again"), MAILBOX)()  # as the connector meets it
    assert account(gsandbox)["grants"] == 0 and account(gsandbox)["refused"] == 2


def test_tampered_or_garbled_assertions_are_invalid_grant(key_file, gsandbox):
    head, body, signature = assertion(key_file).split(".")
    other_body = assertion(key_file, sub="ceo@example.com").split(".")[1]
    for signed in (f"{head}.{other_body}.{signature}", "not-a-jwt", ""):
        answer = token_request(gsandbox, signed)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_another_mailbox_is_refused(key_file, gsandbox):
    answer = token_request(gsandbox, assertion(key_file, sub="ceo@example.com"))
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "Invalid email or User ID"}
    with pytest.raises(Unauthorized, match="Invalid email or User ID"):
        ServiceAccountToken(key_file, "ceo@example.com")()


def test_a_scope_not_delegated_is_unauthorized_client(key_file, gsandbox):
    answer = token_request(gsandbox, assertion(key_file, scope="https://www.googleapis.com/auth/gmail.readonly"))
    assert answer.status_code == 401 and answer.json()["error"] == "unauthorized_client"
    credentials = service_account.Credentials.from_service_account_file(
        str(key_file), scopes=[SCOPES[0], "https://www.googleapis.com/auth/drive"], subject=MAILBOX)
    with pytest.raises(RefreshError, match="unauthorized_client"):
        credentials.refresh(Request())
    empty = token_request(gsandbox, assertion(key_file, scope=""))
    assert empty.status_code == 400 and empty.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("claims, description", [
    ({"exp": int(time.time()) - 10, "iat": int(time.time()) - 3610}, "short-lived"),   # expired
    ({"iat": int(time.time()), "exp": int(time.time()) + 7200}, "short-lived"),         # longer than an hour
    ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 4000}, "short-lived"),  # from the future
    ({"aud": "https://login.example.com/token"}, "audience"),                           # meant for another server
    ({"iss": "someone@else.iam.gserviceaccount.com"}, "Signature"),                     # another account
])
def test_assertion_claims_are_checked(key_file, gsandbox, claims, description):
    answer = token_request(gsandbox, assertion(key_file, **claims))
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert description in answer.json()["error_description"]


def test_other_grant_types_are_unsupported(key_file, gsandbox):
    answer = token_request(gsandbox, assertion(key_file), grant_type="client_credentials")
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


def test_a_token_without_a_mailbox_cannot_read_mail(key_file, gsandbox):
    issued = token_request(gsandbox, assertion(key_file, sub=None)).json()["access_token"]
    answer = gmail(gsandbox, issued, user="me")
    assert answer.status_code == 400 and answer.json()["error"]["status"] == "FAILED_PRECONDITION"


def test_a_token_serves_only_its_mailbox(key_file, gsandbox):
    issued = token_request(gsandbox, assertion(key_file)).json()["access_token"]
    assert gmail(gsandbox, issued, user="me").status_code == 200
    denied = gmail(gsandbox, issued, user="ceo@example.com")
    assert denied.status_code == 403 and "Delegation denied" in denied.json()["error"]["message"]


def test_lifetime_control_checks_its_input(gsandbox):
    for bad in ({"token_seconds": 0}, {"token_seconds": "5"}, {"token_seconds": 3601}, {}):
        assert gsandbox.http.post("/_sandbox/google", json=bad).status_code == 400


def test_without_a_key_the_token_endpoint_is_off(sandbox):
    answer = httpx.post(f"{sandbox.base_url}/token", data={"grant_type": JWT_BEARER, "assertion": "x"})
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    assert sandbox.http.get("/_sandbox/google").status_code == 404
    # ... and Gmail takes the fixed bearer as before
    assert gmail(sandbox, SANDBOX_GMAIL_TOKEN).status_code == 200


# ---------------------------------------------------------------- the command

def test_sandbox_command_writes_the_key_and_says_how_to_use_it(tmp_path):
    key = tmp_path / "keys" / "sa.json"
    port = free_port()
    process = Process(["sandbox", "--port", str(port), "--smtp-port", str(free_port()), "--google-key", str(key),
                       "--google-token-seconds", "60"], tmp_path)
    try:
        line = process.wait_for_line("credentials:")
        assert str(key) in line and "GOOGLE_APPLICATION_CREDENTIALS" in line
        assert json.loads(key.read_text())["token_uri"] == f"http://127.0.0.1:{port}/token"
        shown = httpx.get(f"http://127.0.0.1:{port}/_sandbox/google").json()
        assert shown["token_seconds"] == 60
        assert ServiceAccountToken(key, MAILBOX)().startswith("ya29.")
    finally:
        process.kill()
    (tmp_path / "bad.json").write_text("{not json")
    bad = Process(["sandbox", "--port", str(free_port()), "--smtp-port", str(free_port()),
                   "--google-key", str(tmp_path / "bad.json")], tmp_path)
    assert bad.proc.wait(timeout=30) == 2
    assert "not a readable JSON key file" in bad.text and "Traceback" not in bad.text


def test_the_audience_may_be_google_or_this_endpoint(key_file, gsandbox):
    for audience in (google.GOOGLE_TOKEN_URI, f"{gsandbox.base_url}/token"):
        assert token_request(gsandbox, assertion(key_file, aud=audience)).status_code == 200


def test_token_requests_are_logged_and_leave_the_sandbox_idle(key_file, gsandbox):
    token_request(gsandbox, assertion(key_file))
    token_request(gsandbox, "garbled")
    assert [c["status"] for c in gsandbox.calls("google")] == [200, 400]
    assert gsandbox.running.sandbox.wait_idle(quiet=0.05, timeout=5)
    assert gsandbox.running.sandbox._busy == 0  # every begin had its end
