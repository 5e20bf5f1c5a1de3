"""A fake of Google's OAuth 2.0 token endpoint for service accounts (`POST /token`), so that the production sign-in
path to Gmail (connectors/gmail.py: google-auth, a key file, domain-wide delegation) runs against the sandbox
unchanged: `switchboard sandbox --google-key FILE`, and GOOGLE_APPLICATION_CREDENTIALS=FILE for the service.

google-auth sends the JWT-bearer grant (RFC 7523): `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an
RS256 `assertion` signed with the key file's private key, claims `iss` (client_email), `sub` (the impersonated
mailbox), `scope`, `aud` (Google's https://oauth2.googleapis.com/token whatever the key file's token_uri says:
google.oauth2.service_account), `iat` and `exp` (iat + 1 hour)
(https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests). The fake checks the
signature against the key file's public key, then the claims, and answers `{"access_token", "expires_in",
"token_type": "Bearer"}`. While the sandbox runs in this mode the Gmail fake takes only tokens issued here, unexpired
(sandbox/gmail.py). Refusals are Google's `{"error", "error_description"}` (docs/vendors/gmail.md#service-account-auth;
the descriptions as google-auth's RefreshError quotes them, e.g. googleapis/google-cloud-python#10004).

The token lifetime is short when a test wants it (`--google-token-seconds`, `POST /_sandbox/google`), to prove
expiry and refresh: google-auth refreshes a token 3 min 45 s before it expires (google.auth._helpers.REFRESH_THRESHOLD).
"""
from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Response, current_app, g, jsonify, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from .state import current

bp = Blueprint("sandbox_google", __name__)
TOKEN_PATH = "/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GMAIL_SCOPE = "https://mail.google.com/"
GRANTED_SCOPES = frozenset({GMAIL_SCOPE})  # what the Workspace admin delegated to the service account
MAX_ASSERTION_SECONDS = 3600               # "Token must be a short-lived token (60 minutes)"
CLOCK_SKEW = 300
DEFAULT_TOKEN_SECONDS = 3600
PROJECT = "switchboard-sandbox"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # the audience google-auth always signs for


@dataclass
class Grant:
    subject: str | None
    scopes: frozenset[str]
    expires: float


@dataclass
class ServiceAccount:
    """The service account the sandbox trusts (its key file's public half) and the bearers it issued."""
    path: Path
    client_email: str
    key_id: str
    public_key: RSAKey
    token_uri: str
    default_token_seconds: int = DEFAULT_TOKEN_SECONDS
    token_seconds: int = DEFAULT_TOKEN_SECONDS
    tokens: dict[str, Grant] = field(default_factory=dict)
    grants: int = 0      # tokens issued since the last reset
    refused: int = 0     # token requests refused since the last reset
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.tokens.clear()
            self.grants = self.refused = 0
            self.token_seconds = self.default_token_seconds

    def issue(self, subject: str | None, scopes: frozenset[str]) -> tuple[str, int]:
        token = "ya29.sandbox-" + secrets.token_urlsafe(24)
        with self.lock:
            now = time.time()
            self.tokens = {t: grant for t, grant in self.tokens.items() if grant.expires > now}  # forget old ones
            self.tokens[token] = Grant(subject, scopes, now + self.token_seconds)
            self.grants += 1
            return token, self.token_seconds

    def bearer(self, token: str) -> Grant | None:
        """The grant of an issued, unexpired token; None otherwise."""
        with self.lock:
            grant = self.tokens.get(token)
        return grant if grant is not None and grant.expires > time.time() else None

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {"key_file": str(self.path), "client_email": self.client_email, "token_uri": self.token_uri,
                    "token_seconds": self.token_seconds, "grants": self.grants, "refused": self.refused,
                    "live_tokens": sum(1 for t in self.tokens.values() if t.expires > time.time())}


def write_key_file(path: Path, token_uri: str) -> None:
    """A new service-account key file as Google's console downloads it, with a fresh RSA key (mode 0600: it is a
    secret, even a sandbox's)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    email = f"switchboard@{PROJECT}.iam.gserviceaccount.com"
    info = {"type": "service_account", "project_id": PROJECT, "private_key_id": secrets.token_hex(20),
            "private_key": pem, "client_email": email, "client_id": str(secrets.randbelow(10 ** 20) + 10 ** 20),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
            "universe_domain": "googleapis.com"}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(info, out, indent=2)


def load_account(path: Path, token_uri: str, token_seconds: int = DEFAULT_TOKEN_SECONDS) -> ServiceAccount:
    """The service account of the key file at `path`, first writing one (token_uri: this sandbox's `/token`) when
    there is none. A key file that is not a service account's is a ValueError naming what is wrong."""
    if not path.exists():
        write_key_file(path, token_uri)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable JSON key file ({type(exc).__name__})") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError(f"{path}: not a service-account key file (\"type\" must be \"service_account\")")
    missing = [k for k in ("client_email", "private_key", "token_uri") if not isinstance(info.get(k), str)]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    try:
        private = RSAKey.import_key(info["private_key"])
    except (JoseError, ValueError, TypeError):
        raise ValueError(f"{path}: private_key is not an RSA private key in PEM") from None
    public = RSAKey.import_key(private.as_pem(private=False))
    return ServiceAccount(path=path, client_email=info["client_email"], key_id=str(info.get("private_key_id", "")),
                          public_key=public, token_uri=info["token_uri"], default_token_seconds=token_seconds,
                          token_seconds=token_seconds)


def account() -> ServiceAccount | None:
    """The service account of this sandbox, or None when it runs without `--google-key` (fixed Gmail bearer)."""
    found: ServiceAccount | None = current_app.extensions.get("google")
    return found


def _refuse(status: int, error: str, description: str) -> Response:
    found = account()
    if found is not None:
        with found.lock:
            found.refused += 1
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


SHORT_LIVED = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
               "Check your iat and exp values in the JWT claim.")


@bp.post(TOKEN_PATH)
def token() -> Response:
    current().begin()  # counted and logged like a vendor's call: the server's teardown ends it (sandbox/server.py)
    g.service = "google"
    found = account()
    if found is None:
        return _refuse(404, "not_found", "the sandbox runs without --google-key: Gmail takes its fixed bearer")
    if request.form.get("grant_type") != JWT_BEARER:
        return _refuse(400, "unsupported_grant_type", f"Invalid grant_type: {request.form.get('grant_type', '')}")
    try:
        claims = jwt.decode(request.form.get("assertion", ""), found.public_key, algorithms=["RS256"]).claims
    except (JoseError, ValueError):  # a bad signature, another key, or not a JWT at all
        return _refuse(400, "invalid_grant", "Invalid JWT Signature.")
    if claims.get("iss") != found.client_email:
        return _refuse(400, "invalid_grant", "Invalid JWT Signature.")  # Google looks the key up by iss
    if claims.get("aud") not in (GOOGLE_TOKEN_URI, request.base_url):  # Google's, or the URL used to reach us
        return _refuse(400, "invalid_grant", "Invalid JWT: Failed audience check.")
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if (not isinstance(iat, (int, float)) or not isinstance(exp, (int, float)) or exp <= now or iat > now + CLOCK_SKEW
            or exp - iat > MAX_ASSERTION_SECONDS):
        return _refuse(400, "invalid_grant", SHORT_LIVED)
    scopes = frozenset(str(claims.get("scope") or "").split())
    if not scopes:
        return _refuse(400, "invalid_scope", "Empty or missing scope not allowed.")
    if not scopes <= GRANTED_SCOPES:  # domain-wide delegation grants exactly the listed scopes
        return _refuse(401, "unauthorized_client", "Client is unauthorized to retrieve access tokens using this "
                                                   "method, or client not authorized for any of the scopes requested.")
    subject = claims.get("sub")
    if subject is not None and subject != current().credentials["gmail_user"]:
        return _refuse(400, "invalid_grant", "Invalid email or User ID")
    access, seconds = found.issue(subject, scopes)
    response = jsonify(access_token=access, expires_in=seconds, token_type="Bearer")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/_sandbox/google")
def show() -> tuple[Response, int]:
    found = account()
    if found is None:
        return jsonify(error="the sandbox runs without --google-key"), 404
    return jsonify(found.describe()), 200


@bp.post("/_sandbox/google")
def configure() -> tuple[Response, int]:
    """`{"token_seconds": 2}`: the lifetime of tokens issued from now on (a reset restores the start value)."""
    found = account()
    if found is None:
        return jsonify(error="the sandbox runs without --google-key"), 404
    body = request.get_json(silent=True)
    seconds = body.get("token_seconds") if isinstance(body, dict) else None
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= 3600:
        return jsonify(error="invalid request", fields={"token_seconds": "an integer from 1 to 3600"}), 400
    with found.lock:
        found.token_seconds = seconds
    return jsonify(found.describe()), 200
