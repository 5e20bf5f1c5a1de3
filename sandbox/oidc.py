"""A fake of Google's OpenID Connect provider, so that staff sign in to the console (`/staff/`) without a real
account: discovery, an authorization page where you pick a user, the token endpoint (authorization code with a
PKCE S256 check and the client secret), the signing keys and userinfo. The issuer is the sandbox's own base URL.

The users are a few staff of the configured domain (`staff.domain` in the YAML), one of each role through the
groups the YAML's `staff.roles` names, one without a role, and one outsider of another domain. Real Google sends
no groups; this fake's userinfo sends a `groups` claim so that roles by group can be tried (docs/staff.md).
Paths follow Google's where they can (`/o/oauth2/v2/auth`); the token endpoint is `/oidc/token`, since the sandbox's
`/token` belongs to the service-account fake.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from core.settings import SANDBOX_OIDC, ConfigError, Env, load_config

bp = Blueprint("sandbox_oidc", __name__)
AUTHORIZE, TOKEN, USERINFO, CERTS = "/o/oauth2/v2/auth", "/oidc/token", "/oidc/userinfo", "/oidc/certs"
CODE_SECONDS, TOKEN_SECONDS = 120, 3600
OUTSIDER_DOMAIN = "example.org"


@dataclass(frozen=True)
class User:
    email: str
    name: str
    groups: tuple[str, ...]
    hd: str | None  # Google sets `hd` only for a Workspace account


def users(domain: str) -> list[User]:
    return [User(f"anna.ops@{domain}", "Ops Anna", (f"support-ops@{domain}", f"staff@{domain}"), domain),
            User(f"peter.privacy@{domain}", "Privacy Péter", (f"privacy@{domain}", f"staff@{domain}"), domain),
            User(f"kata.complaints@{domain}", "Complaints Kata", (f"complaints@{domain}", f"staff@{domain}"), domain),
            User(f"viktor.viewer@{domain}", "Viewer Viktor", (f"staff@{domain}",), domain),
            User(f"nora.norole@{domain}", "No-role Nóra", (), domain),
            User(f"eve@{OUTSIDER_DOMAIN}", "Outsider Eve", (f"staff@{OUTSIDER_DOMAIN}",), OUTSIDER_DOMAIN)]


@dataclass
class Provider:
    client_id: str
    client_secret: str
    users: list[User]
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"},
                                                                    auto_kid=True))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, tuple[User, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def user(self, email: str) -> User | None:
        return next((u for u in self.users if u.email == email), None)


def provider_for(env: Env) -> Provider:
    try:
        domain = load_config(env.switchboard_config).staff.domain
    except ConfigError:  # the sandbox serves even beside a broken YAML; the service reports that
        domain = "example.com"
    return Provider(client_id=env.oidc_client_id or SANDBOX_OIDC["client_id"],
                    client_secret=env.secret("oidc_client_secret") or SANDBOX_OIDC["client_secret"],
                    users=users(domain))


def _provider() -> Provider:
    provider: Provider = current_app.extensions["oidc"]
    return provider


def _issuer() -> str:
    return request.url_root.rstrip("/")


def _error(status: int, error: str, description: str) -> Response:
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    return response


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    issuer = _issuer()
    return jsonify(
        issuer=issuer, authorization_endpoint=issuer + AUTHORIZE, token_endpoint=issuer + TOKEN,
        userinfo_endpoint=issuer + USERINFO, jwks_uri=issuer + CERTS, response_types_supported=["code"],
        subject_types_supported=["public"], id_token_signing_alg_values_supported=["RS256"],
        scopes_supported=["openid", "email", "profile"], code_challenge_methods_supported=["S256"],
        token_endpoint_auth_methods_supported=["client_secret_post", "client_secret_basic"],
        grant_types_supported=["authorization_code"],
        claims_supported=["aud", "email", "email_verified", "exp", "hd", "iat", "iss", "name", "nonce", "sub",
                          "groups"])


@bp.get(CERTS)
def certs() -> Response:
    return jsonify(KeySet([_provider().key]).as_dict(private=False))


def _authorize_problem(args: Any, provider: Provider) -> str | None:
    """What is wrong with an authorization request, as the error page says it; None when it is good."""
    if args.get("client_id") != provider.client_id:
        return "unknown client_id"
    if not (args.get("redirect_uri") or "").startswith(("http://", "https://")):
        return "redirect_uri missing or not http(s)"
    if args.get("response_type") != "code":
        return "response_type must be code"
    if "openid" not in (args.get("scope") or "").split():
        return "scope must include openid"
    if not args.get("code_challenge") or args.get("code_challenge_method") != "S256":
        return "PKCE required: code_challenge with code_challenge_method=S256"
    return None


PASSED_ON = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
             "code_challenge_method")


@bp.route(AUTHORIZE, methods=["GET", "POST"])
def authorize() -> Any:
    """GET: the pick-a-user page. POST (the page's buttons): a code for the user picked, back to the client."""
    provider = _provider()
    args = request.form if request.method == "POST" else request.args
    problem = _authorize_problem(args, provider)
    if problem:  # as Google does, an error page here, never a redirect to an unchecked URI
        return Response(render_template("oidc_error.html", problem=problem), status=400, mimetype="text/html")
    redirect_uri, state = args["redirect_uri"], args.get("state")
    separator = "&" if "?" in redirect_uri else "?"
    if request.method == "GET":
        return render_template("oidc_pick.html", users=provider.users, passed={k: args.get(k) or ""
                                                                               for k in PASSED_ON})
    user = provider.user(request.form.get("email", ""))
    if user is None:  # "Cancel", or a user that is not on the page
        return redirect(redirect_uri + separator + urlencode({"error": "access_denied", "state": state or ""}))
    code = secrets.token_urlsafe(24)
    with provider.lock:
        provider.codes[code] = {"user": user, "client_id": args["client_id"], "redirect_uri": redirect_uri,
                                "nonce": args.get("nonce"), "challenge": args["code_challenge"],
                                "expires": time.time() + CODE_SECONDS}
    return redirect(redirect_uri + separator + urlencode({"code": code, **({"state": state} if state else {})}))


def _client_credentials() -> tuple[str, str]:
    if request.authorization and request.authorization.type == "basic":
        return request.authorization.username or "", request.authorization.password or ""
    return request.form.get("client_id", ""), request.form.get("client_secret", "")


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _claims(user: User, groups: bool = False) -> dict[str, Any]:
    """The user's claims; `groups` only from userinfo, so that the client's userinfo call is exercised."""
    claims = {"sub": hashlib.sha256(user.email.encode()).hexdigest()[:21], "email": user.email,
              "email_verified": True, "name": user.name, **({"groups": list(user.groups)} if groups else {})}
    return {**claims, "hd": user.hd} if user.hd else claims


@bp.post(TOKEN)
def token() -> Response:
    provider = _provider()
    client_id, client_secret = _client_credentials()
    if client_id != provider.client_id or not secrets.compare_digest(client_secret, provider.client_secret):
        return _error(401, "invalid_client", "The OAuth client was not found or its secret is wrong.")
    if request.form.get("grant_type") != "authorization_code":
        return _error(400, "unsupported_grant_type", "Only authorization_code.")
    with provider.lock:
        grant = provider.codes.pop(request.form.get("code", ""), None)  # a code is good once
    if grant is None or grant["expires"] < time.time() or grant["client_id"] != client_id:
        return _error(400, "invalid_grant", "Malformed auth code.")
    if request.form.get("redirect_uri") != grant["redirect_uri"]:
        return _error(400, "redirect_uri_mismatch", "Bad Request")
    if _s256(request.form.get("code_verifier", "")) != grant["challenge"]:
        return _error(400, "invalid_grant", "Invalid code verifier.")
    user, now = grant["user"], int(time.time())
    access = secrets.token_urlsafe(32)
    with provider.lock:
        provider.tokens[access] = (user, now + TOKEN_SECONDS)
    claims = {"iss": _issuer(), "aud": client_id, "azp": client_id, "iat": now, "exp": now + TOKEN_SECONDS,
              **({"nonce": grant["nonce"]} if grant["nonce"] else {}), **_claims(user)}
    id_token = jwt.encode({"alg": "RS256", "kid": provider.key.kid, "typ": "JWT"}, claims, provider.key)
    response = jsonify(access_token=access, id_token=id_token, token_type="Bearer", expires_in=TOKEN_SECONDS,
                       scope="openid email profile")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get(USERINFO)
def userinfo() -> Response:
    provider = _provider()
    scheme, _, access = request.headers.get("Authorization", "").partition(" ")
    found = provider.tokens.get(access) if scheme.lower() == "bearer" else None
    if found is None or found[1] < time.time():
        response = _error(401, "invalid_token", "Invalid Credentials")
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    return jsonify(_claims(found[0], groups=True))
