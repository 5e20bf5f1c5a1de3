"""The satisfaction survey (policy 000: "when the ticket is closed, the survey email is sent at the same moment";
docs/policy.md#closure-and-survey).

- `on_ticket_closed(ticket_id)`: the closure flow calls it; one survey mail per ticket (one per closure with
  `survey.resend_on_reclose`), in the customer's language, carrying a signed, expiring link.
- `open_survey(token)` / `record_response(token, score, comment)`: what the survey page (webhooks/survey.py)
  needs. The answer is stored once, by a conditional UPDATE, in the request; a job then writes it to HubSpot
  (ticket and contact properties) and to the HappyFox ticket as a private note, each write keyed in `effects`.

A survey "round" is identified by its key: `survey:<ticket id>`, or `survey:<ticket id>:<closed at>` when
re-sending on every closure. The key is the send's idempotency key, is signed into the token, and prefixes the
keys of the answer's writes, so a repeated close, a retried job or a double submit each do their work once.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import or_, select, update

from core import audit, jobs, settings, store
from core.models import Customer, Effect, Erasure, Identity, Ticket, utcnow
from flows import effects, engagements, vendors
from flows.privacy import restriction

log = logging.getLogger(__name__)

LANGUAGES = ("hu", "en")
SCORES = range(1, 6)
COMMENT_MAX_CHARS = 2000
SALT = "survey"  # a fixed interface: itsdangerous URLSafeTimedSerializer with SECRET_KEY, salt "survey"


class InvalidLink(Exception):
    """Not a token we signed (forged, tampered, truncated), or its ticket is gone."""


class ExpiredLink(Exception):
    """Signed by us but older than `survey.link_ttl_days`, or replaced by a newer survey of the same ticket."""

    def __init__(self, language: str = "hu") -> None:
        super().__init__("survey link expired")
        self.language = language


class InvalidAnswer(ValueError):
    """The form's values are not acceptable; `errors` maps a field name to a reason code."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class SurveyLink:
    ticket_id: int
    language: str
    key: str


@dataclass(frozen=True)
class SurveyView:
    """What the survey page shows about the ticket: no personal data beyond the id the customer was told."""
    ticket_id: int
    display_id: str
    language: str
    answered: bool


# ---------------------------------------------------------------- tokens

def _serializer() -> URLSafeTimedSerializer:
    secret = settings.get().env.secret("secret_key")
    if not secret:
        raise RuntimeError("SECRET_KEY is not set: survey links cannot be signed")
    return URLSafeTimedSerializer(secret, salt=SALT)


def make_token(ticket_id: int, language: str, key: str) -> str:
    return _serializer().dumps({"t": ticket_id, "l": language, "k": key})


def _link_of(payload: Any) -> SurveyLink | None:
    if (isinstance(payload, dict) and isinstance(payload.get("t"), int) and payload.get("l") in LANGUAGES
            and isinstance(payload.get("k"), str)):
        return SurveyLink(payload["t"], payload["l"], payload["k"])
    return None


def read_token(token: str) -> SurveyLink:
    """The link a token carries; InvalidLink when we did not sign it, ExpiredLink when it is too old."""
    serializer = _serializer()
    max_age = settings.get().config.survey.link_ttl_days * 86400
    try:
        link = _link_of(serializer.loads(token, max_age=max_age))
    except SignatureExpired:
        # The signature was checked before the age, so the payload is ours: it picks the page's language.
        old = _link_of(serializer.loads_unsafe(token)[1])
        raise ExpiredLink(old.language if old else "hu") from None
    except BadSignature:
        raise InvalidLink("bad signature") from None
    if link is None:
        raise InvalidLink("unexpected payload")
    return link


def _key_of(token: str | None) -> str | None:
    """The round key a stored token was signed with (our own token: no signature check needed)."""
    if not token:
        return None
    link = _link_of(_serializer().loads_unsafe(token)[1])
    return link.key if link else None


def link_url(token: str) -> str:
    return f"{settings.get().env.public_base_url.rstrip('/')}/survey/{token}"


# ---------------------------------------------------------------- sending

def _round_key(ticket: Ticket, resend: bool) -> str | None:
    """This closure's survey key, or None when this closure has had its survey already."""
    if not resend or ticket.closed_at is None:
        return None if ticket.survey_sent_at is not None else f"survey:{ticket.id}"
    # Each closure has its own closing time, hence its own key; no comparison of our clock with the vendor's.
    key = f"survey:{ticket.id}:{ticket.closed_at:%Y%m%dT%H%M%S}"
    if ticket.survey_sent_at is not None and _key_of(ticket.survey_token) == key:
        return None
    return key


def _root(s: Any, customer: Customer | None) -> Customer | None:
    """A merged customer's identities live on the one it was merged into."""
    seen = set()
    while customer is not None and customer.merged_into_id and customer.id not in seen:
        seen.add(customer.id)
        customer = s.get(Customer, customer.merged_into_id)
    return customer


def _identity(s: Any, customer: Customer | None, system: str) -> str | None:
    if customer is None:
        return None
    ids = [customer.id] + ([root.id] if (root := _root(s, customer)) is not None else [])
    value: str | None = s.scalar(select(Identity.value).where(Identity.customer_id.in_(ids),
                                                             Identity.system == system).order_by(Identity.id))
    return value


def _erasure_requested(s: Any, customer: Customer) -> bool:
    """An erasure was asked for: `erased_at` comes only with its last step, and the person is not mailed meanwhile."""
    ids = {customer.id} | ({root.id} if (root := _root(s, customer)) is not None else set())
    return s.scalar(select(Erasure.id).where(Erasure.customer_id.in_(ids)).limit(1)) is not None


def _greeting_name(customer: Customer, language: str) -> str:
    # Hungarian addresses a customer formally by family name then given name; English by the given name.
    if language == "hu":
        return " ".join(p for p in (customer.last_name, customer.first_name) if p)
    return customer.first_name or ""


def on_ticket_closed(ticket_id: int) -> bool:
    """The closure flow's hook: send the survey unless this ticket (this closure, with resend) had it."""
    return send_survey(ticket_id)


def send_survey(ticket_id: int) -> bool:
    """Send the survey mail for the ticket's current closure at most once. Returns whether this call sent."""
    loaded = settings.get()
    resend = loaded.config.survey.resend_on_reclose
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        if ticket is None:
            raise LookupError(f"no ticket {ticket_id}")
        key = _round_key(ticket, resend)
        if key is None:
            return False
        customer = s.get(Customer, ticket.customer_id) if ticket.customer_id else None
        email = _identity(s, customer, "email")
        if customer is None or customer.erased_at is not None or not email:
            log.info("ticket %s: no survey, the customer has no mail address", ticket_id)
            return False
        if _erasure_requested(s, customer):
            log.info("ticket %s: no survey, the customer's erasure is under way", ticket_id)
            return False
        if restriction.is_restricted(s, customer.id):
            log.info("ticket %s: no survey, the customer's processing is restricted", ticket_id)
            return False
        language = customer.language if customer.language in LANGUAGES else "hu"
        old = ticket.survey_token
        if _key_of(old) != key:
            # Compare-and-set: two concurrent closures must not leave a token other than the one mailed.
            s.execute(update(Ticket).where(Ticket.id == ticket_id, or_(Ticket.survey_token == old,
                                                                         Ticket.survey_token.is_(None)))
                      .values(survey_token=make_token(ticket_id, language, key), survey_sent_at=None,
                              survey_score=None, survey_comment=None, survey_answered_at=None))
        context = {"ticket_id": ticket.told_id or ticket.happyfox_display_id or str(ticket.id),
                   "name": _greeting_name(customer, language)}
    with store.session() as s:
        row = s.get(Ticket, ticket_id)
        token = row.survey_token if row is not None else None
    if token is None or _key_of(token) != key:
        return False  # a newer round took over meanwhile
    template = loaded.config.survey.template
    # Stable across retries (the token is stored before sending) yet unique per database: Gmail drops a message
    # whose Message-ID it has seen, so a reused ticket id after a reset must not reuse one.
    message_id = f"{key.replace(':', '-')}-{hashlib.sha256(token.encode()).hexdigest()[:16]}"
    sent = effects.send_once(key, lambda: vendors.get().mail.send(
        email, template, language, message_id=message_id, link=link_url(token), **context))
    with store.session() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket_id, Ticket.survey_token == token)
                  .values(survey_sent_at=utcnow()))
        if sent:
            audit.record(s, "switchboard", "survey.sent", ticket_id=ticket_id, customer_id=customer.id,
                         round=key, language=language)
    engagements.mail_sent(key, ticket_id, "survey", template, language)
    return sent


# ---------------------------------------------------------------- answering

def open_survey(token: str) -> SurveyView:
    """The ticket a link is for; InvalidLink or ExpiredLink when it cannot be answered through this link."""
    link = read_token(token)
    with store.session() as s:
        ticket = s.get(Ticket, link.ticket_id)
        if ticket is None:
            raise InvalidLink("no such ticket")
        if ticket.survey_token != token:
            raise ExpiredLink(link.language)  # a newer survey of the same ticket replaced this one
        return SurveyView(ticket.id, ticket.told_id or ticket.happyfox_display_id or str(ticket.id),
                          link.language, ticket.survey_answered_at is not None)


def validate_answer(score: Any, comment: Any) -> tuple[int, str | None]:
    errors = {}
    try:
        value = int(str(score).strip())
    except (TypeError, ValueError):
        value = 0
    if value not in SCORES:
        errors["score"] = "missing" if score in (None, "") else "range"
    text = (comment or "").strip() if isinstance(comment, (str, type(None))) else None
    if text is None:
        errors["comment"] = "invalid"
    elif len(text) > COMMENT_MAX_CHARS:
        errors["comment"] = "too_long"
    if errors:
        raise InvalidAnswer(errors)
    return value, (text or None)


def record_response(token: str, score: Any, comment: Any) -> bool:
    """Store the answer once. True when stored now, False when the survey was answered before; raises
    InvalidLink, ExpiredLink or InvalidAnswer. The vendor writes follow in a job."""
    view = open_survey(token)
    if view.answered:
        return False
    value, text = validate_answer(score, comment)
    key = read_token(token).key
    with store.session() as s:
        # Guarded against a double submit: only the first UPDATE finds survey_answered_at still NULL.
        stored = s.execute(update(Ticket).where(Ticket.id == view.ticket_id, Ticket.survey_token == token,
                                                Ticket.survey_answered_at.is_(None))
                           .values(survey_score=value, survey_comment=text, survey_answered_at=utcnow()))
        if store.rowcount(stored) != 1:
            return False
        audit.record(s, "customer", "survey.answered", ticket_id=view.ticket_id, round=key, score=value)
    _queue_write(view.ticket_id, key)
    return True


def _queue_write(ticket_id: int, key: str) -> None:
    try:
        jobs.enqueue("write_survey_response", ticket_id, key)
    except Exception as exc:  # stored is what the customer was told; the sweep queues it later
        log.error("could not queue the survey write of ticket %s (%s); the sweep will", ticket_id,
                  type(exc).__name__)


# ---------------------------------------------------------------- writing the answer to the vendors

def _note(score: int, comment: str | None, key: str) -> str:
    lines = [f"Elégedettségi kérdőív / Satisfaction survey: {score}/5"]
    if comment:
        lines.append(f"Megjegyzés / Comment: {comment}")
    lines.append(f"[{key}]")  # found again on a retry, so that a crash after the write adds no second note
    return "\n".join(lines)


def _note_exists(happyfox_id: int, key: str) -> str | None:
    ticket = vendors.get().happyfox.get_ticket(happyfox_id)
    for entry in ticket.updates:
        if entry.message is not None and entry.message.contains(f"[{key}]"):
            return str(happyfox_id)
    return None


@jobs.job
def write_survey_response(ticket_id: int, key: str) -> None:
    """HubSpot ticket and contact properties, and a HappyFox private note, each once per survey round."""
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        if ticket is None or ticket.survey_answered_at is None or _key_of(ticket.survey_token) != key:
            return  # erased, or superseded by a newer round: nothing of this round to write
        score, comment = ticket.survey_score, ticket.survey_comment
        hubspot_ticket, happyfox_id = ticket.hubspot_ticket_id, ticket.happyfox_id
        customer = s.get(Customer, ticket.customer_id) if ticket.customer_id else None
        contact_id = _identity(s, customer, "hubspot")
    v = vendors.get()
    if hubspot_ticket:
        # Property updates are idempotent PATCHes: a repeat writes the same values
        # (docs/vendors/hubspot.md#tickets-and-pipelines).
        effects.once(f"{key}:hubspot-ticket", lambda: str(v.hubspot.update_ticket(hubspot_ticket, {
            "switchboard_survey_score": str(score), "switchboard_survey_comment": comment or ""}).id
            or hubspot_ticket))
    if contact_id:
        effects.once(f"{key}:hubspot-contact", lambda: str(v.hubspot.update_contact(contact_id, {
            "switchboard_last_survey_score": str(score)}).id or contact_id))
    if happyfox_id and score is not None:
        staff_id = settings.get().config.intake.staff_id
        # staff_pvtnote/ (docs/vendors/happyfox.md#replies-notes-and-status-changes): visible to staff only. A note is
        # not idempotent, so its marker is looked for first (one GET per answer): a job that crashed after adding it
        # adds no second.
        effects.once(f"{key}:happyfox-note", lambda: str(v.happyfox.update_ticket(
            happyfox_id, staff_id=staff_id, private_note=_note(score, comment, key)).id or happyfox_id),
            find=lambda: _note_exists(happyfox_id, key), retry=True)
    with store.session() as s:
        store.record_effect(s, f"{key}:written", None, {"state": "written"})


@jobs.periodic(jobs.crontab(minute="*/15"))
def sweep_survey_writes() -> int:
    """Queue the writes of answers stored while the queue was down (answered in the last week, not written)."""
    since = utcnow() - timedelta(days=7)
    with store.session() as s:
        rows = s.execute(select(Ticket.id, Ticket.survey_token).where(Ticket.survey_answered_at >= since)).all()
        pending = [(tid, key) for tid, token in rows if (key := _key_of(token))
                   and s.get(Effect, f"{key}:written") is None]
    for ticket_id, key in pending:
        _queue_write(ticket_id, key)
    return len(pending)

