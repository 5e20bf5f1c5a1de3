"""Sign-in to the staff console: OpenID Connect through Authlib's Flask client (PKCE S256, `state`, `nonce`), the
domain and role checks, the signed session, CSRF on every POST, and sign-out (docs/staff.md).

- Only an address of `staff.domain` that the provider verified may sign in (`email_verified`, and Google's `hd`
  claim equal to the domain); its roles come from `staff.roles` by the address or one of its groups. No role: no
  console.
- The session is Flask's signed cookie: `HttpOnly`, `SameSite=Lax`, `Secure` unless PUBLIC_BASE_URL is plain-http
  loopback (the embedded default, where a browser would drop a Secure cookie); it ends after `staff.idle_minutes`
  unused and after `staff.max_hours` in any case.
- The audit names the staff member by address: it is the staff member's work identity, not a customer's personal
  data, and accountability needs it in the clear.
"""
from __future__ import annotations

import functools
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, g, redirect, render_template, request, session, url_for

from core import audit, settings, store
from core.settings import Settings

from .i18n import language

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates")
OAUTH = "switchboard.staff_oauth"
PUBLIC_ENDPOINTS = {"staff.callback", "staff.signed_out"}
ACTOR_CHARS = 60  # audit.actor is String(60)

# Which roles may do what; every other page is open to every role. docs/staff.md has the same table.
PERMISSIONS = {
    "customers": {"ops", "privacy"},   # the identity graph: personal data
    "export": {"privacy"},
    "erase": {"privacy"},
    "erasures": {"ops", "privacy"},
    "audit": {"ops", "privacy"},
    "replay": {"ops"},
    "complaint_edit": {"complaints"},          # the register's twelve fields (policy 004: the complaint officer)
    "complaint_identity": {"complaints", "ops", "privacy"},  # an open complaint's customer name, email, phone
    "complaint_report": {"complaints", "ops", "privacy", "viewer"},
    "holds": {"ops", "privacy"},               # who is held: ties customers to complaints
    "requests": {"ops", "privacy"},            # data-subject requests: customer ids, deadlines, tasks
    "request_act": {"privacy"},                # verify, extend, confirm a manual task, complete, refuse
}


@dataclass(frozen=True)
class Staff:
    email: str
    name: str
    roles: tuple[str, ...]

    def may(self, permission: str) -> bool:
        return bool(set(self.roles) & PERMISSIONS[permission]) if permission in PERMISSIONS else bool(self.roles)


def plain_http_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def init_app(app: Flask, loaded: Settings) -> None:
    """Session cookie flags for the whole app, and the OpenID Connect client when OIDC_* are set."""
    spec, env = loaded.config.staff, loaded.env
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=not plain_http_loopback(env.public_base_url),
                      PERMANENT_SESSION_LIFETIME=timedelta(minutes=spec.idle_minutes))
    if env.oidc_issuer and env.oidc_client_id and env.oidc_client_secret:
        oauth = OAuth(app)
        oauth.register("provider", client_id=env.oidc_client_id, client_secret=env.secret("oidc_client_secret"),
                       server_metadata_url=env.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
                       client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256",
                                      "timeout": loaded.config.timeouts_seconds})
        app.extensions[OAUTH] = oauth
    app.register_blueprint(bp)


def _client() -> Any:
    oauth = current_app.extensions.get(OAUTH)
    if oauth is None:
        abort(503, "staff sign-in is not configured: set OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
    return oauth.provider


def current() -> Staff:
    staff: Staff = g.staff
    return staff


def _signed_in() -> Staff | None:
    who = session.get("staff")
    if not isinstance(who, dict):
        return None
    if time.time() - float(who.get("since", 0)) > settings.get().config.staff.max_hours * 3600:
        return None
    return Staff(email=who["email"], name=who.get("name") or who["email"], roles=tuple(who.get("roles") or ()))


@bp.before_request
def _guard() -> Any:
    if not current_app.secret_key:  # no signed session without it
        abort(503, "the staff console needs SECRET_KEY")
    if request.args.get("lang") in ("hu", "en"):
        session["lang"] = request.args["lang"]
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    staff = _signed_in()
    if staff is None:
        session.pop("staff", None)
        session["next"] = request.full_path if request.method == "GET" else url_for("staff.overview")
        # Authlib makes the state, the nonce and the PKCE verifier, and keeps them in the session for the callback.
        return _client().authorize_redirect(url_for("staff.callback", _external=True))
    if request.method == "POST":
        given, expected = request.form.get("csrf", ""), session.get("csrf", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            abort(400, "the form's security token is missing or stale: reload the page and try again")
    g.staff = staff
    return None


def needs(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Refuse (403, audited) a staff member whose roles do not allow `permission`."""
    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not current().may(permission):
                with store.session() as s:
                    audit.record(s, current().email, "staff.refused", permission=permission,
                                 endpoint=request.endpoint)
                return render_template("staff/refused.html", reason="role", permission=permission), 403
            return view(*args, **kwargs)
        return guarded
    return wrap


def _refuse(reason: str, actor: str, **detail: Any) -> Any:
    session.pop("staff", None)
    with store.session() as s:
        audit.record(s, actor, "staff.sign_in_refused", reason=reason, **detail)
    return render_template("staff/refused.html", reason=reason, permission=None), 403


@bp.get("/auth")
def callback() -> Any:
    """Where the provider sends the browser back: check everything, then open the session."""
    client = _client()
    if request.args.get("error"):
        return render_template("staff/refused.html", reason="provider", permission=None), 403
    try:
        token = client.authorize_access_token()  # state, code + PKCE verifier, ID token signature, iss, aud, nonce
        claims = dict(token.get("userinfo") or {})
        groups = claims.get("groups") or client.userinfo(token=token).get("groups") or []
    except OAuthError as exc:
        return render_template("staff/refused.html", reason="failed", permission=None,
                               error=exc.error), 400
    spec = settings.get().config.staff
    email = str(claims.get("email") or "").strip().lower()
    domain = email.rpartition("@")[2]
    if claims.get("email_verified") is not True or domain != spec.domain.lower() or claims.get("hd") != domain:
        return _refuse("domain", "outsider", domain=domain or None)
    if len(email) > ACTOR_CHARS:
        return _refuse("address", "outsider", domain=domain)
    roles = spec.roles_of(email, [str(group) for group in groups if isinstance(group, str)])
    if not roles:
        return _refuse("role", email)
    after = session.get("next") or ""
    lang = session.get("lang")
    session.clear()  # nothing from before the sign-in survives into the signed-in session
    session.permanent = True
    session.update(staff={"email": email, "name": str(claims.get("name") or email), "roles": roles,
                          "since": time.time()}, csrf=secrets.token_urlsafe(32), lang=lang or language())
    with store.session() as s:
        audit.record(s, email, "staff.signed_in", roles=roles)
    return redirect(after if after.startswith("/staff/") and not after.startswith("/staff/auth") else
                    url_for("staff.overview"))


@bp.post("/sign-out")
def sign_out() -> Any:
    with store.session() as s:
        audit.record(s, current().email, "staff.signed_out")
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("staff.signed_out"))


@bp.get("/signed-out")
def signed_out() -> Any:
    return render_template("staff/signed_out.html")
