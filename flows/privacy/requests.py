"""Data-subject requests (GDPR Art. 12-21, policy 002; docs/privacy.md#data-subject-requests) as records.

A request has a kind, a person (a customer and a salted hash of the identifier given, never the identifier in a log
or an alert), a channel, a deadline (one month from receipt; once extendable by two more months with a reason, Art.
12(3)) and a state:

    awaiting_verification -> verified -> done
                          -> refused  (the identity could not be checked, or the request is unfounded)

Nothing is erased or exported before the identity check is recorded (who, how, when): a mail to the privacy address
only opens a request awaiting verification and answers with an acknowledgement, so a forged sender gets the real
person an acknowledgement and erases nothing. A verified erasure runs the erasure (`flows/privacy/erasure.py`) and
completes with it; a verified access request runs the export (`flows/privacy/access.py`); a withdrawal marks the
consents withdrawn and runs the erasure too, whose receipt names what a legal obligation keeps and why; a restriction or objection restricts the person's
processing (`flows/privacy/restriction.py`) until `lift`. Rectification is done by staff, who complete the request
with a note.

Requests arrive from `switchboard requests add`, `POST /admin/requests` and the privacy mailbox (polled every
few minutes). A sweep completes erasures that finished and alerts requests nearly due and overdue.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import getaddresses
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, ingest, jobs, settings, store
from core.addresses import InvalidAddress, mailbox
from core.jobs import crontab
from core.models import Erasure, InboxEvent, PrivacyRequest, RequestTask
from flows import alerts, effects, identity, inbox, payloads, vendors
from flows.identity import Person
from flows.privacy import access, consent, erasure, erasure_steps, restriction, retention

log = logging.getLogger(__name__)
ACTOR = "requests"
KINDS = ("access", "erasure", "rectification", "restriction", "objection", "withdrawal")
UNSPECIFIED = "unspecified"  # a mail whose kind could not be told: staff name it when they verify
CHANNELS = ("cli", "admin", "mail", "staff")
METHODS = ("known_address", "id_document", "in_person", "phone_callback", "signed_letter")
OPEN = ("awaiting_verification", "verified")
# The kinds that erase, and the erasure's reason: a withdrawal erases what rested on consent, which is all we hold
# but what a legal obligation keeps (the complaint register); the receipt says what was kept and why.
ERASING = {"erasure": "request", "withdrawal": "consent_withdrawn"}
SOURCE = "privacy"       # the inbox source of privacy mail (read by our poll, not a vendor's webhook)
MAIL_KIND = "mail"
MAX_TEXT = 20_000

# The first of these found in the subject, then in the body, names the kind (Hungarian and English); staff
# confirm or correct it when they verify.
KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("withdrawal", ("visszavon", "withdraw")),
    ("erasure", ("törl", "torl", "elfeledtet", "erase", "erasure", "delete", "forgotten")),
    ("restriction", ("korlátoz", "korlatoz", "restrict")),
    ("objection", ("tiltakoz", "object")),
    ("rectification", ("helyesbít", "helyesbit", "rectif", "correct")),
    ("access", ("hozzáférés", "hozzaferes", "másolat", "masolat", "access", "copy of", "export")),
)
ENGLISH = re.compile(r"\b(the|please|my|data|request|dear|delete|access)\b", re.IGNORECASE)


class RequestError(ValueError):
    """A request cannot go this way (unknown, in the wrong state, a missing reason); the message says why and
    holds no personal data."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def due_for(received_at: datetime) -> datetime:
    """One month from receipt (Art. 12(3)); the 31st of a month lands on the last day of the next."""
    due: datetime = received_at + relativedelta(months=1)
    return due


# ---------------------------------------------------------------- arrival

def _customer(s: Session, person: Person, actor: str) -> int:
    found = identity.find(s, **person.known)
    if found:
        return found[0].id
    # Somebody we never saw: recorded, so that a later erasure or export finds them by the same identity.
    return identity.resolve(s, person, actor).id


def add(kind: str, email: str | None = None, phone: str | None = None, *, channel: str = "cli", actor: str = "cli",
        received_at: datetime | None = None, language: str | None = None, source_key: str | None = None) -> int:
    """Record a request; its id. The same `source_key` (a mail read twice) gives the same request."""
    if kind not in KINDS and kind != UNSPECIFIED:
        raise RequestError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    if channel not in CHANNELS:
        raise RequestError(f"unknown channel {channel!r}: one of {', '.join(CHANNELS)}")
    person = Person(email=mailbox(email) if email else None, phone=phone)  # InvalidAddress: a ValueError
    if not person.known:
        raise RequestError("a request needs a valid email address or phone number")
    received = received_at or _now()
    with store.session() as s:
        if source_key and (found := s.scalar(select(PrivacyRequest.id).where(
                PrivacyRequest.source_key == source_key))) is not None:
            return found
        customer_id = _customer(s, person, actor)
        primary = person.email or person.phone or ""
        row = PrivacyRequest(kind=kind, channel=channel, source_key=source_key, customer_id=customer_id,
                             subject_hash=audit.subject_hash(primary),
                             language=language or settings.get().config.privacy.language,
                             received_at=received, due_at=due_for(received), reply_to=person.email)
        s.add(row)
        s.flush()
        audit.record(s, actor, "request.received", customer_id=customer_id, request_id=row.id, kind=kind,
                     channel=channel, subject_hash=row.subject_hash)
        return row.id


def _get(s: Session, request_id: int) -> PrivacyRequest:
    row = s.get(PrivacyRequest, request_id)
    if row is None:
        raise LookupError(f"no request {request_id}")
    return row


def verify(request_id: int, by: str, method: str, *, kind: str | None = None, actor: str = "cli") -> None:
    """Record the identity check (who checked, how, now); `kind` names or corrects the request's kind. Nothing
    runs yet: `run` (or the job `start` queues) does the request's work."""
    if method not in METHODS:
        raise RequestError(f"unknown method {method!r}: one of {', '.join(METHODS)}")
    if not by.strip():
        raise RequestError("say who verified the identity")
    if kind is not None and kind not in KINDS:
        raise RequestError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    with store.session() as s:
        row = _get(s, request_id)
        if row.state != "awaiting_verification":
            raise RequestError(f"request {request_id} is {row.state}, not awaiting verification")
        if (kind or row.kind) == UNSPECIFIED:
            raise RequestError(f"request {request_id}: name its kind (one of {', '.join(KINDS)})")
        row.kind = kind or row.kind
        row.state, row.verified_at, row.verified_by, row.verification_method = "verified", _now(), by.strip(), method
        audit.record(s, actor, "request.verified", customer_id=row.customer_id, request_id=row.id, kind=row.kind,
                     method=method, verified_by=row.verified_by)
        # Processors without an API: a task each for staff, due within its days and never after the request.
        for spec in settings.get().config.privacy.manual_processors:
            if row.kind in spec.kinds:
                s.add(RequestTask(request_id=row.id, processor=spec.name, instructions=spec.instructions,
                                  due_at=min(row.due_at, _now() + timedelta(days=spec.days))))


def extend(request_id: int, reason: str, *, actor: str = "cli") -> datetime:
    """Extend the deadline by two months (Art. 12(3): complex or numerous requests), once, with the reason the
    person must be told; the new deadline."""
    if not reason.strip():
        raise RequestError("an extension needs its reason (the person is told it)")
    with store.session() as s:
        row = _get(s, request_id)
        if row.state not in OPEN:
            raise RequestError(f"request {request_id} is {row.state}")
        if row.extended_at is not None:
            raise RequestError(f"request {request_id} was extended already (at most two months, once)")
        row.due_at = row.received_at + relativedelta(months=3)
        row.extended_at, row.extension_reason = _now(), reason.strip()
        audit.record(s, actor, "request.extended", customer_id=row.customer_id, request_id=row.id,
                     due_at=row.due_at.isoformat())
        return row.due_at


def refuse(request_id: int, note: str, *, actor: str = "cli") -> None:
    """Close a request without acting on it: the identity could not be checked, or it is unfounded (Art. 12(5))."""
    if not note.strip():
        raise RequestError("say why the request is refused")
    with store.session() as s:
        row = _get(s, request_id)
        if row.state not in OPEN:
            raise RequestError(f"request {request_id} is {row.state}")
        # The reply address was kept to tell the outcome of a request we act on; refused, staff answer by hand.
        row.state, row.note, row.completed_at, row.reply_to = "refused", note.strip(), _now(), None
        audit.record(s, actor, "request.refused", customer_id=row.customer_id, request_id=row.id)


# ---------------------------------------------------------------- doing what was asked

def _subject(s: Session, row: PrivacyRequest) -> erasure_steps.Subject:
    assert row.customer_id is not None
    return erasure_steps.subject_of(s, row.customer_id)


def run(request_id: int, *, actor: str = ACTOR) -> str:
    """Do a verified request's work here and now; its state afterwards. An erasure runs every step (a failing
    one stays for the erasure's own retries and the sweep completes the request later); an export that could not
    read every processor leaves the request open."""
    with store.session() as s:
        row = _get(s, request_id)
        if row.state != "verified":
            raise RequestError(f"request {request_id} is {row.state}: only a verified request runs")
        kind, customer_id, erasure_id = row.kind, row.customer_id, row.erasure_id
    if kind in ERASING:
        if kind == "withdrawal":  # recorded first: the consents are marked withdrawn, the retention clock is due
            retention.withdraw_consent(customer_id=customer_id, actor=actor)
        if erasure_id is None:
            erasure_id = erasure.request(customer_id=customer_id, reason=ERASING[kind], actor=actor)
            with store.session() as s:
                _get(s, request_id).erasure_id = erasure_id
        erasure.run(erasure_id)
        return settle(request_id)
    if kind == "access":
        with store.session() as s:
            subject = _subject(s, _get(s, request_id))
        result = access.export(email=subject.emails[0] if subject.emails else None,
                               phone=subject.phones[0] if subject.phones else None, actor=actor)
        outcome = {"export": [result.json_path.name, result.html_path.name], "complete": result.complete,
                   "errors": sorted(result.data["errors"])}
        with store.session() as s:
            row = _get(s, request_id)
            row.outcome = outcome
        if result.complete and not open_tasks(request_id):
            complete(request_id, actor=actor)
        return state_of(request_id)
    if kind in restriction.KINDS:
        assert customer_id is not None
        restriction.restrict(customer_id, kind, request_id=request_id, actor=actor)
        with store.session() as s:
            _get(s, request_id).outcome = {"restricted": kind, "at": _now().isoformat()}
        if not open_tasks(request_id):
            complete(request_id, actor=actor)
        return state_of(request_id)
    # Rectification: staff correct the data (in HubSpot, say), the flows carry it to every system and note each in
    # the outcome (`note_rectified`); staff complete with a note.
    return state_of(request_id)


def note_rectified(s: Session, customer_id: int, processor: str, kind: str) -> list[int]:
    """A correction of the customer's `kind` (email or phone) reached `processor` (a vendor, or `switchboard` for
    our identities): counted in the outcome's `processors` of each of their verified rectification requests, which
    the completion mail names system by system, as after an erasure. The request ids noted."""
    rows = list(s.scalars(select(PrivacyRequest).where(PrivacyRequest.customer_id == customer_id,
                                                       PrivacyRequest.kind == "rectification",
                                                       PrivacyRequest.state == "verified")))
    for row in rows:
        outcome = dict(row.outcome or {})
        processors = {name: dict(counts) for name, counts in (outcome.get("processors") or {}).items()}
        counts = processors.setdefault(processor, {})
        counts[kind] = int(counts.get(kind, 0)) + 1
        row.outcome = {**outcome, "processors": processors}  # a new dict: the JSON column sees the change
    return [row.id for row in rows]


def lift(request_id: int, note: str, *, actor: str = "cli") -> list[int]:
    """Lift the restriction (or objection) a request set, telling why (the person must be told before, Art.
    18(3)); the held inbox events replayed."""
    if not note.strip():
        raise RequestError("say why the restriction is lifted")
    with store.session() as s:
        row = _get(s, request_id)
        if row.kind not in restriction.KINDS or row.state != "done" or row.customer_id is None:
            raise RequestError(f"request {request_id} set no restriction")
        if (row.outcome or {}).get("lifted_at"):
            raise RequestError(f"request {request_id}: lifted already")
        customer_id = row.customer_id
    replayed = restriction.lift(customer_id, actor=actor)
    with store.session() as s:
        row = _get(s, request_id)
        row.outcome = {**(row.outcome or {}), "lifted_at": _now().isoformat(), "lift_reason": note.strip(),
                       "replayed": len(replayed)}
        audit.record(s, actor, "request.lifted", customer_id=customer_id, request_id=request_id)
    return replayed


@jobs.job
def run_request(request_id: int) -> str:
    """`run`, for a worker (the admin API's verify queues it)."""
    return run(int(request_id))


def settle(request_id: int) -> str:
    """An erasure request whose erasure finished is complete; its state."""
    with store.session() as s:
        row = _get(s, request_id)
        if row.state != "verified" or row.erasure_id is None:
            return row.state
        done = s.scalar(select(Erasure.status).where(Erasure.id == row.erasure_id)) == "done"
    if done and not open_tasks(request_id):
        complete(request_id, actor=erasure.ACTOR)
    return state_of(request_id)


def complete(request_id: int, note: str | None = None, *, actor: str = "cli") -> None:
    """Close a verified request. An erasure completes only when its erasure has, an access request only with an
    export of every processor; what staff do by hand (rectification, restriction, objection) needs their note."""
    with store.session() as s:
        row = _get(s, request_id)
        if row.state != "verified":
            raise RequestError(f"request {request_id} is {row.state}: verify it first")
        if row.kind in ERASING:
            found = s.get(Erasure, row.erasure_id) if row.erasure_id is not None else None
            if found is None or found.status != "done":
                raise RequestError(f"request {request_id}: its erasure is not complete")
            # What went, per processor, and what a legal obligation keeps, with its reason (the receipt).
            row.outcome = {"erasure_id": found.id, "reason": found.reason,
                           "processors": {step.processor: (step.receipt or {}).get("counts", {})
                                          for step in found.steps},
                           "kept": consent.kept_and_why(found)}
        elif row.kind == "access" and not (row.outcome or {}).get("complete"):
            raise RequestError(f"request {request_id}: no complete export yet")
        elif row.kind == "rectification" and not (note or "").strip():
            raise RequestError(f"request {request_id}: say what was done (--note)")
        waiting = [t.processor for t in row.tasks if t.confirmed_at is None]
        if waiting:
            raise RequestError(f"request {request_id}: manual tasks not confirmed: {', '.join(waiting)}")
        row.outcome = {**(row.outcome or {}), "manual": [
            {"processor": t.processor, "confirmed_at": t.confirmed_at.isoformat() if t.confirmed_at else None,
             "confirmed_by": t.confirmed_by, "note": t.note} for t in row.tasks]}
        row.state, row.completed_at = "done", _now()
        row.note = (note or "").strip() or row.note
        audit.record(s, actor, "request.completed", customer_id=row.customer_id, request_id=row.id, kind=row.kind)
    try:
        notify(request_id)
    except Exception as exc:  # done is done; the mail is the sweep's to send once the server answers
        log.warning("request %s: completion mail not sent (%s); the sweep sends it", request_id, type(exc).__name__)


def open_tasks(request_id: int) -> list[str]:
    with store.session() as s:
        return list(s.scalars(select(RequestTask.processor).where(RequestTask.request_id == request_id,
                                                                  RequestTask.confirmed_at.is_(None))))


def tasks(request_id: int) -> list[dict[str, Any]]:
    with store.session() as s:
        _get(s, request_id)
        return [{"id": t.id, "processor": t.processor, "instructions": t.instructions,
                 "due_at": t.due_at.isoformat(), "confirmed_at": t.confirmed_at.isoformat() if t.confirmed_at else None,
                 "confirmed_by": t.confirmed_by, "note": t.note}
                for t in s.scalars(select(RequestTask).where(RequestTask.request_id == request_id)
                                   .order_by(RequestTask.id))]


def confirm_task(request_id: int, processor: str, by: str, note: str | None = None, *, actor: str = "cli") -> str:
    """Staff confirm they did the task at `processor`; when it was the last, a request whose own work is done
    completes (a rectification still waits for staff's note). The request's state afterwards."""
    if not by.strip():
        raise RequestError("say who confirms the task")
    with store.session() as s:
        row = _get(s, request_id)
        task = next((t for t in row.tasks if t.processor == processor), None)
        if task is None:
            raise RequestError(f"request {request_id} has no task at {processor!r}")
        if row.state != "verified":
            raise RequestError(f"request {request_id} is {row.state}")
        if task.confirmed_at is None:
            task.confirmed_at, task.confirmed_by, task.note = _now(), by.strip(), (note or "").strip() or None
            audit.record(s, actor, "request.task_confirmed", customer_id=row.customer_id, request_id=row.id,
                         processor=processor, confirmed_by=task.confirmed_by)
        kind, outcome = row.kind, dict(row.outcome or {})
    if open_tasks(request_id):
        return state_of(request_id)
    if kind in ERASING:
        return settle(request_id)
    if (kind == "access" and outcome.get("complete")) or (kind in restriction.KINDS and outcome.get("restricted")):
        complete(request_id, actor=actor)
    return state_of(request_id)


# ---------------------------------------------------------------- telling the person (Art. 12(1), 12(3))

SYSTEMS = {
    "hu": {"hubspot": "HubSpot (ügyfélkapcsolat-kezelő rendszer)", "happyfox": "HappyFox (ügyfélszolgálati jegykezelő)",
           "aircall": "Aircall (telefonos ügyfélszolgálat)", "gmail": "Google Workspace (ügyfélszolgálati postafiók)",
           "switchboard": "saját nyilvántartásunk (Switchboard)"},
    "en": {"hubspot": "HubSpot (customer relationship system)", "happyfox": "HappyFox (help desk)",
           "aircall": "Aircall (phone service)", "gmail": "Google Workspace (support mailbox)",
           "switchboard": "our own records (Switchboard)"}}
DONE = {"hu": {"erasure": "töröltük", "withdrawal": "töröltük", "access": "adatainak másolatát elkészítettük",
               "restriction": "az adatkezelést korlátoztuk", "objection": "az adatkezelést felfüggesztettük",
               "rectification": "helyesbítettük", "manual": "a kérésnek megfelelően eljárt"},
        "en": {"erasure": "erased", "withdrawal": "erased", "access": "a copy of your data was prepared",
               "restriction": "processing restricted", "objection": "processing stopped",
               "rectification": "corrected", "manual": "acted on your request"}}


def _told(row: PrivacyRequest, language: str) -> dict[str, Any]:
    """What the completion mail says: what was done where, what was kept and until when (plain words)."""
    systems, done = SYSTEMS[language], DONE[language]
    outcome = row.outcome or {}
    where = [f"{systems.get(name, name)}: {done[row.kind]}" for name in (outcome.get("processors") or {})]
    if not where:
        where = [f"{systems['switchboard']}: {done[row.kind]}"]
    labels = {p.name: p.label.get(language) or p.name for p in settings.get().config.privacy.manual_processors}
    where += [f"{labels.get(m['processor'], m['processor'])}: {done['manual']} ({str(m['confirmed_at'])[:10]})"
              for m in outcome.get("manual") or []]
    kept = sorted({str(k.get("until") or "") for k in outcome.get("kept") or []})
    return {"request_id": row.id, "kind": row.kind, "where": where, "kept": bool(outcome.get("kept")),
            "kept_until": ", ".join(k for k in kept if k), "erased": row.kind in ERASING,
            "received_at": row.received_at.date().isoformat(), "note": row.note or ""}


def notify(request_id: int) -> bool:
    """Mail the person the outcome (once), then forget where to: the address was kept only for this."""
    with store.session() as s:
        row = _get(s, request_id)
        if row.state != "done" or row.reply_to is None:
            return False
        to, language, key = row.reply_to, row.language if row.language in SYSTEMS else "hu", f"request.done:{row.id}"
        context = _told(row, language)
        hashed = row.subject_hash[:12]
    template = settings.get().config.privacy.done_template
    sent = effects.send_once(key, lambda: vendors.get().mail.send(
        to, template, language, message_id=f"request-done-{request_id}-{hashed}", **context))
    with store.session() as s:
        row = _get(s, request_id)
        row.reply_to, row.notified_at = None, row.notified_at or _now()
        if sent:
            audit.record(s, ACTOR, "request.notified", customer_id=row.customer_id, request_id=request_id)
    return sent


def state_of(request_id: int) -> str:
    with store.session() as s:
        return _get(s, request_id).state


# ---------------------------------------------------------------- reading

@dataclass(frozen=True)
class Listed:
    id: int
    kind: str
    state: str
    channel: str
    customer_id: int | None
    subject_hash: str
    received_at: datetime
    due_at: datetime
    extended: bool
    verified_by: str | None
    erasure_id: int | None

    def days_left(self, now: datetime | None = None) -> int:
        return (self.due_at - (now or _now())).days

    @property
    def overdue(self) -> bool:
        return self.state in OPEN and self.due_at < _now()


def _listed(row: PrivacyRequest) -> Listed:
    return Listed(row.id, row.kind, row.state, row.channel, row.customer_id, row.subject_hash, row.received_at,
                  row.due_at, row.extended_at is not None, row.verified_by, row.erasure_id)


def listing(*, open_only: bool = True, due_within_days: int | None = None, limit: int = 200) -> list[Listed]:
    """Requests soonest due first (open ones only, unless `open_only` is false)."""
    with store.session() as s:
        query = select(PrivacyRequest).order_by(PrivacyRequest.due_at, PrivacyRequest.id).limit(limit)
        if open_only:
            query = query.where(PrivacyRequest.state.in_(OPEN))
        if due_within_days is not None:
            query = query.where(PrivacyRequest.due_at <= _now() + timedelta(days=due_within_days))
        return [_listed(row) for row in s.scalars(query)]


def detail(request_id: int) -> dict[str, Any]:
    """Everything about a request but the person's identifiers."""
    with store.session() as s:
        row = _get(s, request_id)
        return {"id": row.id, "kind": row.kind, "state": row.state, "channel": row.channel,
                "customer_id": row.customer_id, "subject_hash": row.subject_hash, "language": row.language,
                "received_at": row.received_at.isoformat(), "due_at": row.due_at.isoformat(),
                "extended_at": row.extended_at.isoformat() if row.extended_at else None,
                "extension_reason": row.extension_reason,
                "verified_at": row.verified_at.isoformat() if row.verified_at else None,
                "verified_by": row.verified_by, "verification_method": row.verification_method,
                "erasure_id": row.erasure_id, "outcome": row.outcome, "note": row.note,
                "completed_at": row.completed_at.isoformat() if row.completed_at else None}


# ---------------------------------------------------------------- deadlines

def check_deadlines(now: datetime | None = None) -> list[int]:
    """Alert every open request due within `privacy.warn_days` or overdue, once per request and deadline (an
    extension is alerted afresh); the alert ids raised now."""
    now = now or _now()
    warn = timedelta(days=settings.get().config.privacy.warn_days)
    raised = []
    for row in listing(open_only=True):
        if row.due_at > now + warn:
            break  # soonest due first
        kind = "request.overdue" if row.due_at < now else "request.due"
        alert_id = alerts.raise_alert(kind, f"{kind}:{row.id}:{row.due_at.date().isoformat()}",
                                      command=f"switchboard requests show {row.id}", page=f"/staff/requests/{row.id}",
                                      request_id=row.id, request_kind=row.kind, state=row.state,
                                      due=row.due_at.date().isoformat())
        if alert_id is not None:
            raised.append(alert_id)
    return raised


@jobs.periodic(crontab(minute="*/10"))
def requests_sweep() -> int:
    """Complete the erasure requests whose erasure finished; alert deadlines."""
    with store.session() as s:
        waiting = list(s.scalars(select(PrivacyRequest.id).where(PrivacyRequest.state == "verified",
                                                                 PrivacyRequest.erasure_id.is_not(None))))
    for request_id in waiting:
        settle(request_id)
    with store.session() as s:  # a completion mail that failed (the mail server was down) is sent now
        unsent = list(s.scalars(select(PrivacyRequest.id).where(PrivacyRequest.state == "done",
                                                                PrivacyRequest.reply_to.is_not(None))))
    for request_id in unsent:
        notify(request_id)
    return len(check_deadlines())


# ---------------------------------------------------------------- the privacy mailbox

def classify(subject: str, text: str) -> str:
    for part in (subject.lower(), text.lower()):
        for kind, words in KEYWORDS:
            if any(word in part for word in words):
                return kind
    return UNSPECIFIED


def language_of(subject: str, text: str) -> str:
    words = ENGLISH.findall(f"{subject} {text[:2000]}")
    return "en" if len(words) >= 2 else settings.get().config.privacy.language


def poll_mailbox() -> list[int]:
    """Store each new mail to the privacy address in the inbox (source `privacy`, keyed by Gmail's id, so a mail
    read twice is one event); the new inbox ids (queued for the inbox job)."""
    address = settings.get().config.privacy.mailbox
    gmail = vendors.get().gmail
    ids = gmail.message_ids(f"to:{address}")
    with store.session() as s:
        seen = set(s.scalars(select(InboxEvent.event_key).where(InboxEvent.source == SOURCE,
                                                                InboxEvent.event_key.in_(ids))))
    events = []
    for message_id in ids:
        if message_id in seen:
            continue
        message = gmail.read_message(message_id)
        received = message.received or _now()
        events.append((message_id, MAIL_KIND, {
            "message_id": message_id, "from": message.header("From")[:1000],
            "subject": message.header("Subject")[:1000], "text": message.text()[:MAX_TEXT],
            "received_at": received.isoformat()}))
    stored = ingest.store_events(SOURCE, events)
    return [inbox_id for inbox_id, created in stored if created]


@jobs.periodic(crontab(minute="*/5"))
def privacy_mailbox_poll() -> int:
    return len(poll_mailbox())


def on_privacy_mail(event: inbox.Event) -> int | None:
    """A mail to the privacy address: a request awaiting verification, and its acknowledgement to the sender.
    Mail from our own addresses (a reply of ours copied there) is passed by."""
    mail = payloads.read(event, payloads.PrivacyMail)
    senders = [address for _, address in getaddresses([mail.sender]) if address]
    if len(senders) != 1:
        raise payloads.invalid(event, "from", "not_one_mailbox")
    try:
        sender = mailbox(senders[0])
    except InvalidAddress:
        raise payloads.invalid(event, "from", "invalid_address") from None
    loaded = settings.get()
    ours = {loaded.config.privacy.mailbox.lower(), (loaded.env.gmail_user or "").lower(),
            *(a.lower() for _, a in getaddresses([loaded.env.mail_from]))}
    if sender.lower() in ours:
        return None
    language = language_of(mail.subject, mail.text)
    request_id = add(classify(mail.subject, mail.text), email=sender, channel="mail", actor="mail",
                     received_at=mail.received_at, language=language, source_key=f"mail:{mail.message_id}")
    acknowledge(request_id, sender)
    return request_id


def acknowledge(request_id: int, to: str) -> bool:
    """The templated acknowledgement (HU/EN): the request's number, its deadline, and that we check the identity
    before acting. Sent once per request."""
    info = detail(request_id)
    key = f"request.ack:{request_id}"
    template = settings.get().config.privacy.ack_template
    sent = effects.send_once(key, lambda: vendors.get().mail.send(
        to, template, info["language"], message_id=f"request-ack-{request_id}-{info['subject_hash'][:12]}",
        request_id=request_id, kind=info["kind"], received_at=info["received_at"][:10], due_at=info["due_at"][:10]))
    if sent:
        with store.session() as s:
            audit.record(s, ACTOR, "request.acknowledged", customer_id=info["customer_id"], request_id=request_id)
    return sent
