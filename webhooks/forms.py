"""`/forms/<name>`: the policy's forms served by Switchboard itself (the website form of 001, the product form of
000), for sites that cannot sign a Standard Webhook. Server-rendered, accessible HTML in Hungarian and English
(`?lang=`, else Accept-Language, else the form's language), built from the YAML mapping, usable without
JavaScript, embeddable in an iframe of the origins `hosted_forms.frame_ancestors` lists (docs/forms-and-alerts.md).

- One validation: the signed webhook's (webhooks/form/source.py `validate_fields`, `read_attachments`), so both
  paths accept and refuse the same input; its errors name the posted field and are shown beside it.
- A submission is stored as an inbox event of source `form`, kind `form`, exactly as the webhook stores one, and
  goes through the same intake. Its event key is the form's idempotency key (a hidden field made when the page was
  rendered), so a double click, a resubmit or a reload after the POST stores one event and makes one ticket.
- CSRF: the hidden token is signed with SECRET_KEY over the form name and the idempotency key and expires; a POST
  whose Origin header is another site's is refused. No cookie: a third-party iframe may not keep one.
- Spam: a honeypot field (hidden from people and assistive technology) that, filled, is thanked and dropped; and
  at most `rate_limit` submissions per client address in `rate_window_minutes` (the address kept only as a salted
  hash in `form_rate`, for a day).
- The thank-you page (`/forms/<name>/thanks/<token>`, the token a signed inbox id) shows the ticket id once intake
  made it, and refreshes itself every few seconds until then.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, Response, abort, make_response, redirect, render_template, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, func, select
from werkzeug.exceptions import RequestEntityTooLarge

from core import settings, store
from core.models import FormRate, InboxEvent, Ticket
from core.settings import FormSpec

from .events import Event, Invalid
from .form import source as form_source
from .receiver import accept

bp = Blueprint("forms", __name__)

TOKEN_AGE = 24 * 3600           # seconds a rendered form stays submittable
THANKS_AGE = 7 * 24 * 3600      # seconds the thank-you link shows the ticket id
REFRESH_SECONDS = 3
HONEYPOT = "homepage"           # a name bots fill in; people never see the field
LANGUAGES = ("hu", "en")

# What each of our field names is called on the page.
LABELS: dict[str, dict[str, str]] = {
    "hu": {"last_name": "Vezetéknév", "first_name": "Keresztnév", "name": "Név", "email": "E-mail-cím",
           "purpose": "A megkeresés célja", "product": "Termék vagy szolgáltatás", "summary": "Rövid leírás",
           "details": "Részletes leírás", "attachment": "Csatolmány", "phone": "Telefonszám"},
    "en": {"last_name": "Last name", "first_name": "First name", "name": "Name", "email": "Email address",
           "purpose": "Purpose of your request", "product": "Product or service", "summary": "Short summary",
           "details": "Details", "attachment": "Attachment", "phone": "Phone number"},
}
TEXTS: dict[str, dict[str, str]] = {
    "hu": {"title.website": "Kapcsolatfelvétel", "title.product": "Termékkel kapcsolatos megkeresés",
           "intro": "A *-gal jelölt mezők kitöltése kötelező. Bejelentését rögzítjük, és az azonosítóját "
                    "e-mailben is elküldjük.",
           "choose": "Válasszon…", "required": "kötelező", "optional": "nem kötelező",
           "attachment_hint": "Legfeljebb {count} fájl, egyenként legfeljebb {mb} MB ({types}).",
           "consent": "Elolvastam és elfogadom az adatkezelési tájékoztatót, és hozzájárulok, hogy adataimat a "
                      "bejelentésem intézéséhez kezeljék.",
           "privacy_link": "Adatkezelési tájékoztató", "submit": "Bejelentés elküldése",
           "errors_heading": "Kérjük, javítsa a következőket:", "honeypot": "Ezt a mezőt hagyja üresen",
           "thanks_title": "Köszönjük, megkaptuk a bejelentését!",
           "thanks_id": "Bejelentésének azonosítója:",
           "thanks_mail": "Az azonosítót e-mailben is elküldjük. Kérjük, hivatkozzon rá, ha újra ír nekünk.",
           "thanks_mailed": "Az azonosítót e-mailben is elküldtük. Kérjük, hivatkozzon rá, ha újra ír nekünk.",
           "thanks_wait": "A bejelentés rögzítése folyamatban van; az azonosító néhány másodperc múlva itt "
                          "megjelenik (az oldal magától frissül).",
           "thanks_received": "A bejelentés azonosítóját e-mailben küldjük el.",
           "expired_title": "Az űrlap lejárt", "other_language": "English",
           "expired": "Az űrlap túl régen nyílt meg, vagy másik oldalról küldték be. Kérjük, töltse ki újra.",
           "again": "Új űrlap", "limited_title": "Túl sok beküldés",
           "limited": "Erről a címről rövid időn belül túl sok bejelentés érkezett. Kérjük, próbálja újra "
                      "{minutes} perc múlva.",
           "sending": "Küldés…", "consent_short": "Hozzájárulás"},
    "en": {"title.website": "Contact us", "title.product": "Product enquiry",
           "intro": "Fields marked * are required. We record your request and e-mail you its reference.",
           "choose": "Choose…", "required": "required", "optional": "optional",
           "attachment_hint": "At most {count} files of at most {mb} MB each ({types}).",
           "consent": "I have read and accept the privacy notice, and I agree that my data is processed to "
                      "handle my request.",
           "privacy_link": "Privacy notice", "submit": "Send my request",
           "errors_heading": "Please correct the following:", "honeypot": "Leave this field empty",
           "thanks_title": "Thank you, we have received your request!",
           "thanks_id": "Your request's reference:",
           "thanks_mail": "We also e-mail you the reference. Please quote it if you write to us again.",
           "thanks_mailed": "We have also e-mailed you the reference. Please quote it if you write to us again.",
           "thanks_wait": "Your request is being registered; its reference appears here in a few seconds "
                          "(this page refreshes itself).",
           "thanks_received": "We e-mail you your request's reference.",
           "expired_title": "This form has expired", "other_language": "Magyar",
           "expired": "The form was opened too long ago, or sent from another site. Please fill it in again.",
           "again": "A new form", "limited_title": "Too many submissions",
           "limited": "Too many requests came from this address in a short time. Please try again in "
                      "{minutes} minutes.",
           "sending": "Sending…", "consent_short": "Consent"},
}
ERRORS: dict[str, dict[str, str]] = {
    "hu": {"required": "kötelező mező", "must be text": "szöveget várunk", "consent": "a hozzájárulás kötelező",
           "choice": "válasszon a listából", "too_long": "legfeljebb {n} karakter lehet",
           "email": "érvényes e-mail-címet adjon meg (például nev@example.com)",
           "too_many": "legfeljebb {n} fájl csatolható", "too_large": "{file}: a fájl nagyobb a megengedettnél "
           "({mb} MB)", "type": "{file}: ilyen típusú fájl nem csatolható", "body_too_large":
           "a csatolmányok együtt túl nagyok"},
    "en": {"required": "required", "must be text": "must be text", "consent": "your consent is required",
           "choice": "choose one from the list", "too_long": "at most {n} characters",
           "email": "enter a valid email address (like name@example.com)",
           "too_many": "at most {n} files", "too_large": "{file}: larger than allowed ({mb} MB)",
           "type": "{file}: this type of file is not accepted", "body_too_large":
           "the attachments together are too large"},
}


# ---------------------------------------------------------------- helpers

def _spec(name: str) -> FormSpec:
    spec = settings.get().config.forms.get(name)
    if spec is None:
        abort(404)
    return spec


def _language(spec: FormSpec) -> str:
    asked = request.args.get("lang") or ""
    if not asked and request.method == "POST":
        try:
            asked = request.form.get("lang") or ""
        except RequestEntityTooLarge:  # named at the attachment field by the view
            asked = ""
    if asked in LANGUAGES:
        return asked
    return request.accept_languages.best_match(LANGUAGES) or spec.language


def _serializer(salt: str) -> URLSafeTimedSerializer:
    secret = settings.get().env.secret("secret_key")
    if not secret:
        abort(503, "SECRET_KEY is not set")
    return URLSafeTimedSerializer(secret, salt=salt)


def _headers(language: str, nonce: str) -> dict[str, str]:
    """The page's security headers: who may frame it, and nothing loaded from elsewhere."""
    ancestors = " ".join(settings.get().config.hosted_forms.frame_ancestors) or "'none'"
    return {"Content-Security-Policy": f"default-src 'none'; style-src 'nonce-{nonce}'; script-src "
                                       f"'nonce-{nonce}'; form-action 'self'; base-uri 'none'; "
                                       f"frame-ancestors {ancestors}",
            "Cache-Control": "no-store", "Referrer-Policy": "same-origin", "Content-Language": language,
            "X-Content-Type-Options": "nosniff", "Vary": "Accept-Language"}


def _page(template: str, language: str, status: int = 200, **context: Any) -> Response:
    nonce = secrets.token_urlsafe(16)
    other = "en" if language == "hu" else "hu"
    html = render_template(f"forms/{template}.html", lang=language, other_lang=other, t=TEXTS[language],
                           nonce=nonce, **context)
    return make_response(html, status, _headers(language, nonce))


def _message(language: str, message: str, posted: str) -> str:
    """The shared validation's English message, in the page's language."""
    words = ERRORS[language]
    config = settings.get().config
    mb = _megabytes(config.attachments_max_bytes)
    if message in ("required", "must be text"):
        return words[message]
    if message.startswith("must be one of"):
        return words["choice"]
    if (m := re.match(r"longer than (\d+) characters", message)) is not None:
        return words["too_long"].format(n=m.group(1))
    if message.startswith("at most") and message.endswith("files"):
        return words["too_many"].format(n=config.input.attachments_max_count)
    if (m := re.match(r"(.+): more than \d+ bytes", message)) is not None:
        return words["too_large"].format(file=m.group(1), mb=mb)
    if (m := re.match(r"(.+?): \S+ is not one of", message)) is not None:
        return words["type"].format(file=m.group(1))
    if posted == "email":
        return words["email"]
    return message


def _megabytes(size: int) -> str:
    value = round(size / 1024 / 1024, 1)
    return f"{value:g}"


def _client_address() -> str:
    """The client's address: the entry the one trusted proxy (as for X-Forwarded-Proto, webhooks/app.py) added to
    X-Forwarded-For, else the peer's."""
    forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
    return forwarded[-1] if forwarded else (request.remote_addr or "")


def _address_hash() -> str:
    salt = settings.get().env.secret("secret_key") or "switchboard"
    return hashlib.sha256(f"{salt}:form-rate:{_client_address()}".encode()).hexdigest()


def _over_limit(address_hash: str) -> bool:
    spec = settings.get().config.hosted_forms
    since = datetime.now(timezone.utc) - timedelta(minutes=spec.rate_window_minutes)
    with store.session() as s:
        used = s.scalar(select(func.count()).select_from(FormRate).where(FormRate.address_hash == address_hash,
                                                                         FormRate.at >= since)) or 0
    return used >= spec.rate_limit


def _count(address_hash: str) -> None:
    now = datetime.now(timezone.utc)
    with store.session() as s:
        s.add(FormRate(address_hash=address_hash, at=now))
        s.execute(delete(FormRate).where(FormRate.at < now - timedelta(days=1)))  # kept for a day at most


def _same_origin() -> bool:
    """A browser names the page's origin in Origin on a POST; another site's (a forged cross-site POST) is
    refused. No Origin (an old browser, a privacy setting): the signed token alone decides."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return not origin  # "null": a sandboxed or privacy-stripped context; refused
    return origin.rstrip("/") == request.host_url.rstrip("/")


# ---------------------------------------------------------------- pages

def _form(name: str, spec: FormSpec, language: str, status: int = 200, errors: dict[str, str] | None = None,
          values: dict[str, str] | None = None, key: str | None = None) -> Response:
    config = settings.get().config
    key = key or str(uuid.uuid4())
    token = _serializer("form").dumps({"form": name, "key": key})
    fields = [(ours, posted) for ours, posted in spec.fields.items()
              if ours not in (spec.language_field, spec.consent_field)]  # the consent is the checkbox below
    categories = [(code, c.label.get(language) or code) for code, c in config.categories.items()]
    error_labels = {posted: LABELS[language].get(ours, ours) for ours, posted in spec.fields.items()}
    error_labels["consent"] = TEXTS[language]["consent_short"]
    return _page("form", language, status, name=name, spec=spec, fields=fields, labels=LABELS[language],
                 errors=errors or {}, error_labels=error_labels, values=values or {}, token=token, key=key, categories=categories,
                 honeypot=HONEYPOT, limits=config.input, hosted=config.hosted_forms,
                 mb=_megabytes(config.attachments_max_bytes),
                 types=", ".join(config.attachments_allowed_types),
                 action=url_for("forms.submit", name=name, lang=language))


@bp.get("/forms/<name>")
def show(name: str) -> Response:
    spec = _spec(name)
    return _form(name, spec, _language(spec))


@bp.post("/forms/<name>")
def submit(name: str) -> Any:
    spec = _spec(name)
    language = _language(spec)
    try:
        posted = {k: v for k, v in request.form.items()}
        files = [f for _, f in request.files.items(multi=True) if f.filename]
    except RequestEntityTooLarge:
        attachment = spec.fields.get("attachment", "attachment")
        return _form(name, spec, language, 413, {attachment: ERRORS[language]["body_too_large"]})
    try:
        signed = _serializer("form").loads(posted.get("token", ""), max_age=TOKEN_AGE)
    except (BadSignature, SignatureExpired):
        signed = None
    if not isinstance(signed, dict) or signed.get("form") != name or not _same_origin():
        return _page("expired", language, 403, name=name)
    key = str(signed["key"])
    values = {k: v for k, v in posted.items() if k not in ("token", HONEYPOT)}
    if posted.get(HONEYPOT):  # a bot: thanked, never stored
        return _page("thanks", language, 200, name=name, ticket=None, pending=False)

    address = _address_hash()
    errors: dict[str, str] = {}
    try:
        if spec.language_field and spec.language_field in spec.fields:
            posted[spec.fields[spec.language_field]] = language
        if spec.consent_field:  # the checkbox, stored as the webhook stores the mapped field
            posted[spec.fields[spec.consent_field]] = "yes" if posted.get("consent") == "yes" else ""
        ours = form_source.validate_fields(spec, posted, settings.get().config)
    except Invalid as exc:
        errors.update(exc.fields)
        ours = {}
    if settings.get().config.hosted_forms.consent_required and posted.get("consent") != "yes":
        errors["consent"] = "consent"
    attachments: list[dict[str, Any]] = []
    if not errors:
        try:
            attachments = form_source.read_attachments(files, settings.get().config,
                                                       spec.fields.get("attachment", "attachment"))
        except Invalid as exc:
            errors.update(exc.fields)
    if errors:
        messages = {field: ERRORS[language]["consent"] if field == "consent" else
                    _message(language, message, field) for field, message in errors.items()}
        return _form(name, spec, language, 400, messages, values, key)
    with store.session() as s:  # sent before (a double click, a resubmit): its thank-you page, no new count
        stored = s.scalar(select(InboxEvent.id).where(InboxEvent.source == "form",
                                                      InboxEvent.event_key == f"hosted:{key}"))
    if stored is not None:
        return _thanks_redirect(name, stored, language)
    if _over_limit(address):
        minutes = settings.get().config.hosted_forms.rate_window_minutes
        page = _page("limited", language, 429, name=name, minutes=minutes)
        page.headers["Retry-After"] = str(minutes * 60)
        return page

    payload = {"form": name, "fields": ours, "attachments": attachments, "via": "hosted",
               "consent": bool(posted.get("consent") == "yes")}
    body, status = accept("form", [Event(key=f"hosted:{key}", kind="form", payload=payload)])
    if status == 202:  # a new event: a repeat of the same key was counted the first time
        _count(address)
    return _thanks_redirect(name, int(body["id"]), language)


def _thanks_redirect(name: str, inbox_id: int, language: str) -> Any:
    """303 to the thank-you page (Post/Redirect/Get: a reload there sends nothing again)."""
    thanks = _serializer("thanks").dumps(inbox_id)
    return redirect(url_for("forms.thanks", name=name, token=thanks, lang=language), 303)


@bp.get("/forms/<name>/thanks/<token>")
def thanks(name: str, token: str) -> Response:
    spec = _spec(name)
    language = _language(spec)
    try:
        inbox_id = int(_serializer("thanks").loads(token, max_age=THANKS_AGE))
    except (BadSignature, SignatureExpired, TypeError, ValueError):
        abort(404)
    with store.session() as s:
        ticket = s.execute(select(Ticket.told_id, Ticket.happyfox_display_id)
                           .where(Ticket.source_key == f"inbox:{inbox_id}")).first()
        status = s.scalar(select(InboxEvent.status).where(InboxEvent.id == inbox_id))
    shown = (ticket.told_id or ticket.happyfox_display_id) if ticket is not None else None
    mailed = ticket is not None and ticket.told_id is not None
    # A dead event waits for staff (its alert went out): the page stops refreshing and promises the mail instead.
    pending = shown is None and status != "dead"
    return _page("thanks", language, 200, name=name, ticket=shown, pending=pending, mailed=mailed,
                 refresh=REFRESH_SECONDS)
