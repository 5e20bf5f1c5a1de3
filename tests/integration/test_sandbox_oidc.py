"""The sandbox's fake Google OpenID Connect provider over real HTTP: discovery, the pick-a-user page, the token
endpoint's checks (client secret, PKCE S256, one use per code, redirect URI), the signed ID token and userinfo."""
from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from core.settings import SANDBOX_OIDC

CLIENT, SECRET = SANDBOX_OIDC["client_id"], SANDBOX_OIDC["client_secret"]
REDIRECT = "http://127.0.0.1:9/staff/auth"
VERIFIER = "a-pkce-verifier-that-is-long-enough-to-be-valid-0123456789"


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorization(**overrides: str) -> dict[str, str]:
    return {"client_id": CLIENT, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid email profile",
            "state": "st-1", "nonce": "n-1", "code_challenge": challenge(VERIFIER), "code_challenge_method": "S256",
            **overrides}


def code_for(sandbox: Any, email: str = "anna.ops@example.com") -> str:
    answer = sandbox.http.post("/o/oauth2/v2/auth", data={**authorization(), "email": email})
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


def exchange(sandbox: Any, code: str, verifier: str = VERIFIER, secret: str = SECRET,
             redirect_uri: str = REDIRECT) -> httpx.Response:
    return sandbox.http.post("/oidc/token", auth=(CLIENT, secret), data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirect_uri})


def test_discovery_names_the_sandbox_as_issuer_and_its_endpoints(sandbox: Any) -> None:
    meta = sandbox.http.get("/.well-known/openid-configuration").json()
    assert meta["issuer"] == sandbox.base_url
    assert meta["authorization_endpoint"] == sandbox.base_url + "/o/oauth2/v2/auth"
    assert meta["token_endpoint"] == sandbox.base_url + "/oidc/token"  # not /token: the service-account fake's
    assert meta["code_challenge_methods_supported"] == ["S256"]


def test_the_pick_a_user_page_lists_staff_and_one_outsider(sandbox: Any) -> None:
    page = sandbox.http.get("/o/oauth2/v2/auth", params=authorization())
    assert page.status_code == 200
    for email in ("anna.ops@example.com", "peter.privacy@example.com", "viktor.viewer@example.com",
                  "eve@example.org"):
        assert email in page.text


@pytest.mark.parametrize("change, problem", [
    ({"client_id": "someone-else"}, "unknown client_id"),
    ({"code_challenge": ""}, "PKCE required"),
    ({"code_challenge_method": "plain"}, "PKCE required"),
    ({"scope": "email"}, "openid")])
def test_a_bad_authorization_request_gets_an_error_page_not_a_redirect(sandbox: Any, change: dict[str, str],
                                                                       problem: str) -> None:
    page = sandbox.http.get("/o/oauth2/v2/auth", params=authorization(**change))
    assert page.status_code == 400 and problem in page.text


def test_the_id_token_is_signed_by_the_published_key_and_carries_the_nonce(sandbox: Any) -> None:
    answer = exchange(sandbox, code_for(sandbox, "peter.privacy@example.com"))
    assert answer.status_code == 200
    body = answer.json()
    keys = KeySet.import_key_set(sandbox.http.get("/oidc/certs").json())
    claims = jwt.decode(body["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == sandbox.base_url and claims["aud"] == CLIENT and claims["nonce"] == "n-1"
    assert claims["email"] == "peter.privacy@example.com" and claims["hd"] == "example.com"
    assert claims["email_verified"] is True and "groups" not in claims  # as Google: no groups in the ID token
    info = sandbox.http.get("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert info["email"] == "peter.privacy@example.com" and "privacy@example.com" in info["groups"]


def test_the_outsider_has_another_domain(sandbox: Any) -> None:
    body = exchange(sandbox, code_for(sandbox, "eve@example.org")).json()
    claims = jwt.decode(body["id_token"], KeySet.import_key_set(sandbox.http.get("/oidc/certs").json())).claims
    assert claims["hd"] == "example.org"


def test_a_wrong_pkce_verifier_is_refused(sandbox: Any) -> None:
    answer = exchange(sandbox, code_for(sandbox), verifier="not-" + VERIFIER)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_a_wrong_client_secret_is_refused(sandbox: Any) -> None:
    answer = exchange(sandbox, code_for(sandbox), secret="guess")
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_a_code_is_good_once(sandbox: Any) -> None:
    code = code_for(sandbox)
    assert exchange(sandbox, code).status_code == 200
    again = exchange(sandbox, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_the_redirect_uri_must_match_the_authorization(sandbox: Any) -> None:
    answer = exchange(sandbox, code_for(sandbox), redirect_uri="http://127.0.0.1:9/elsewhere")
    assert answer.status_code == 400 and answer.json()["error"] == "redirect_uri_mismatch"


def test_userinfo_wants_a_token_it_issued(sandbox: Any) -> None:
    answer = sandbox.http.get("/oidc/userinfo", headers={"Authorization": "Bearer made-up"})
    assert answer.status_code == 401 and "invalid_token" in answer.headers["WWW-Authenticate"]


def test_cancel_sends_access_denied_back(sandbox: Any) -> None:
    answer = sandbox.http.post("/o/oauth2/v2/auth", data={**authorization(), "email": ""})
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert answer.status_code == 302 and query["error"] == ["access_denied"] and query["state"] == ["st-1"]
