"""Phone: every Aircall call is logged as a HubSpot call on the caller's contact (direction, duration, agent, recording
link), and a missed call or a voicemail opens a ticket as the form does (docs/policy.md#channels; policy 000: a ticket
is recorded for the call; 002: the phone number is always stored). Configurable in YAML: `intake.ticket_on_missed_call`,
`intake.ticket_on_voicemail`.

The call's ticket, decided once per call and recorded (effect `aircall-call-ticket:<call id>`, so every event of the
call and a replay agree even after the ticket closed): the caller's newest open ticket when they have one (an
answered call, inbound or outbound, is logged on it; a missed call or a voicemail adds to it instead of opening a
second), else for a missed call or a voicemail a new ticket of its own. A call logged on an open ticket gets a
HappyFox private note (duration, agent, recording link) and its HubSpot call is associated to the ticket's mirror as
well as the contact (policy 001: the ticket shows every contact about it). A hidden number (`raw_digits`
"anonymous") has nobody to find: a missed call or voicemail from one opens a ticket marked so, without a customer
or a HubSpot contact.

Aircall tags and comments reach the call's ticket as private notes, one per tag and per comment (keys
`happyfox-note:aircall-tag:<call>:<tag>`, `happyfox-note:aircall-comment:<comment>`), from `call.tagged`,
`call.commented` and the lists every call payload carries (so `call.ended` and the backfill bring them too).

Events (docs/vendors/aircall.md#webhooks): `call.ended` comes about 30 s after hang-up with the final duration and
recording; `call.voicemail_left` may come first. Both key their ticket by the call id, so one call opens at
most one ticket, and only `call.ended` logs the call.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select

from core import audit, settings, store
from core.models import Ticket
from flows import effects, identity, inbox, payloads, vendors
from flows.identity import Person
from flows.intake import enquiry
from flows.payloads import (AircallCall, AircallCallEvent, AircallComment, AircallContact, AircallNumber,
                            AircallTag, AircallUser)
from flows.privacy import tombstones

log = logging.getLogger(__name__)
ACTOR = "calls"
WORDS = {"hu": {"missed": "Nem fogadott hívás", "voicemail": "Hangüzenet", "agent": "Ügyintéző",
                "reason": "Ok", "recording": "Felvétel", "call": "hívás", "inbound": "Bejövő",
                "outbound": "Kimenő", "hidden": "rejtett szám", "duration": "Időtartam", "tag": "Aircall címke",
                "comment": "Aircall megjegyzés"},
         "en": {"missed": "Missed call", "voicemail": "Voicemail", "agent": "Agent", "reason": "Reason",
                "recording": "Recording", "call": "call", "inbound": "Inbound", "outbound": "Outbound",
                "hidden": "hidden number", "duration": "Duration", "tag": "Aircall tag",
                "comment": "Aircall comment"}}
OWN, NONE = "own", "none"  # the recorded decision: the call's own ticket, no ticket, or an open ticket's id


@dataclass
class Call:
    """The facts of one Aircall call payload that the flows use (docs/vendors/aircall.md#calls)."""
    id: str
    direction: str                 # inbound | outbound
    phone: str | None              # the external party, E.164; None for a hidden number
    our_number: str | None
    started_at: datetime
    duration_s: int
    answered: bool
    ended: bool
    voicemail: str | None
    recording: str | None
    asset: str | None
    missed_reason: str | None
    agent: str | None
    contact: AircallContact
    tags: list[AircallTag]
    comments: list[AircallComment]

    @classmethod
    def from_payload(cls, data: AircallCall) -> "Call":
        number, user = data.number or AircallNumber(), data.user or AircallUser()
        started = data.started_at or data.ended_at
        return cls(id=str(data.id), direction=data.direction or "inbound",
                   phone=identity.normalise_phone(data.raw_digits),
                   our_number=number.e164_digits or number.digits,
                   started_at=datetime.fromtimestamp(started, timezone.utc) if started
                   else datetime.now(timezone.utc),
                   duration_s=data.duration or 0, answered=data.answered_at is not None,
                   ended=data.ended_at is not None,
                   voicemail=data.voicemail, recording=data.recording, asset=data.asset,
                   missed_reason=data.missed_call_reason, agent=user.name, contact=data.contact or AircallContact(),
                   tags=list(data.tags or []), comments=list(data.comments or []))

    @classmethod
    def of(cls, event: inbox.Event) -> "Call":
        """The event's call, or inbox.Permanent when its payload is unusable (flows/payloads.py)."""
        return cls.from_payload(payloads.read(event, AircallCallEvent).data)

    @property
    def missed(self) -> bool:
        return self.direction == "inbound" and not self.answered

    @property
    def key(self) -> str:
        return f"aircall-call:{self.id}"

    def person(self) -> Person:
        emails = [e.value for e in self.contact.emails or []]
        return Person(email=next((e for e in emails if identity.normalise_email(e)), None), phone=self.phone,
                      first_name=self.contact.first_name, last_name=self.contact.last_name)


def _caller(call: Call, received_at: datetime) -> int | None:
    """The caller as our customer (found by phone or the Aircall contact's email, or created), with the Aircall
    contact linked; None for a hidden number."""
    if call.phone is None:
        return None
    with store.session() as s:
        customer = identity.resolve(s, call.person(), ACTOR, at=received_at)
        customer = identity.add_identity(s, customer, "aircall", call.contact.id, ACTOR)
        return customer.id


def _wants_ticket(call: Call) -> bool:
    intake_config = settings.get().config.intake
    if call.voicemail:
        return intake_config.ticket_on_voicemail
    return call.missed and intake_config.ticket_on_missed_call


def _words(language: str | None) -> dict[str, str]:
    return WORDS.get(language or "hu", WORDS["hu"])


def _open_ticket(call: Call, customer_id: int | None, received_at: datetime) -> int:
    """The call's own ticket (a missed call or a voicemail); without a customer for a hidden number."""
    language = "hu"
    if customer_id is not None:
        with store.session() as s:
            language = identity.current(s, customer_id).language
    words = _words(language)
    subject = words["voicemail"] if call.voicemail else words["missed"]
    if customer_id is None:
        subject = f"{subject} ({words['hidden']})"
    lines = [f"{subject}: {call.phone or words['hidden']} ({call.started_at:%Y-%m-%d %H:%M} UTC)"]
    if call.missed_reason:
        lines.append(f"{words['reason']}: {call.missed_reason}")
    if call.asset or call.voicemail:
        lines.append(f"{words['recording']}: {call.asset or call.voicemail}")
    # Nobody to name: HappyFox still needs a contact name on the ticket.
    person = call.person() if customer_id is not None else \
        Person(email=settings.get().config.intake.hidden_number_email, first_name=words["hidden"].capitalize())
    report = enquiry.Enquiry(channel="phone", key=call.key, person=person, subject=subject,
                             details="\n".join(lines), received_at=received_at, customer_id=customer_id,
                             anonymous=customer_id is None)
    return enquiry.register(report)


def _newest_open(customer_id: int, call: Call) -> int | None:
    """The customer's newest open ticket that HappyFox holds (not the call's own)."""
    with store.session() as s:
        return s.scalar(select(Ticket.id).where(
            Ticket.customer_id == customer_id, Ticket.is_closed.is_(False), Ticket.happyfox_id.is_not(None),
            Ticket.source_key != call.key).order_by(Ticket.opened_at.desc(), Ticket.id.desc()).limit(1))


def _decide(call: Call, customer_id: int | None) -> str:
    """Which ticket the call belongs to, decided once (OWN, NONE or an open ticket's id): a later event of the call
    (a replay, a comment a day later) reaches the same ticket whatever happened to the customer's tickets since."""
    def decide() -> str:
        with store.session() as s:
            if s.scalar(select(Ticket.id).where(Ticket.source_key == call.key)) is not None:
                return OWN
        open_id = _newest_open(customer_id, call) if customer_id is not None else None
        if open_id is not None:
            return str(open_id)
        return OWN if _wants_ticket(call) else NONE

    return effects.once(f"aircall-call-ticket:{call.id}", decide)


def ticket_of(call: Call, customer_id: int | None, received_at: datetime) -> tuple[int | None, bool]:
    """(the call's ticket, whether it is the call's own), opening its own when that is the decision."""
    decision = _decide(call, customer_id)
    if decision == NONE:
        return None, False
    if decision == OWN:
        return _open_ticket(call, customer_id, received_at), True
    return int(decision), False


def _happyfox_of(ticket_id: int) -> tuple[int | None, str | None, str | None]:
    """(HappyFox id, HubSpot mirror id, the customer's language) of our ticket."""
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        if ticket is None:
            return None, None, None
        customer = identity.current(s, ticket.customer_id) if ticket.customer_id is not None else None
        return ticket.happyfox_id, ticket.hubspot_ticket_id, customer.language if customer else None


def note(ticket_id: int, key: str, text: str) -> str | None:
    """A HappyFox private note on our ticket, once per `key`. A note is a new entry each time it is posted
    (docs/vendors/happyfox.md#replies-notes-and-status-changes), so it carries `[key]`, and a retry (a crash after
    the post, a replayed event) looks for it before posting."""
    happyfox_id, _, _ = _happyfox_of(ticket_id)
    if happyfox_id is None:
        return None
    happyfox = vendors.get().happyfox
    staff_id = settings.get().config.intake.staff_id
    marker = f"[{key}]"

    def find() -> str | None:
        ticket = happyfox.get_ticket(happyfox_id)
        found = any(u.message is not None and u.message.contains(marker) for u in ticket.updates)
        return str(happyfox_id) if found else None

    def post() -> str:
        return str(happyfox.update_ticket(happyfox_id, staff_id=staff_id, private_note=f"{text}\n{marker}").id
                   or happyfox_id)

    return effects.once(key, post, find=find)


def _call_note(call: Call, ticket_id: int) -> None:
    """The call on an open ticket: what kind, when, how long, who answered, the recording."""
    words = _words(_happyfox_of(ticket_id)[2])
    inbound = call.direction == "inbound"
    title = words["voicemail"] if call.voicemail else words["missed"] if call.missed else \
        f"{words['inbound' if inbound else 'outbound']} {words['call']}"
    lines = [f"{title}: {call.phone} ({call.started_at:%Y-%m-%d %H:%M} UTC)",
             f"{words['duration']}: {call.duration_s} s",
             f"{words['agent']}: {call.agent}" if call.agent else None,
             f"{words['reason']}: {call.missed_reason}" if call.missed_reason else None,
             f"{words['recording']}: {call.asset or call.recording or call.voicemail}"
             if (call.asset or call.recording or call.voicemail) else None]
    if note(ticket_id, f"happyfox-note:{call.key}", "\n".join(line for line in lines if line)):
        with store.session() as s:
            audit.record(s, ACTOR, "call.noted", ticket_id=ticket_id, aircall_call_id=call.id)


def _tags_and_comments(call: Call, ticket_id: int | None) -> int:
    """Each tag and comment of the call as a private note on its ticket, once; how many the call has."""
    if ticket_id is None:
        return 0
    words = _words(_happyfox_of(ticket_id)[2])
    for tag in call.tags:
        note(ticket_id, f"happyfox-note:aircall-tag:{call.id}:{tag.id}", f"{words['tag']}: {tag.name or tag.id}")
    for comment in call.comments:
        author = comment.posted_by.name if comment.posted_by and comment.posted_by.name else None
        text = f"{words['comment']}" + (f" ({author})" if author else "") + f": {comment.content or ''}"
        note(ticket_id, f"happyfox-note:aircall-comment:{comment.id}", text)
    return len(call.tags) + len(call.comments)


def _log_call(call: Call, customer_id: int, ticket_id: int | None) -> str:
    """The HubSpot call on the caller's contact, and on the mirror of the call's ticket (its own or an open one)."""
    config = settings.get().config
    hubspot = vendors.get().hubspot
    with store.session() as s:
        customer = identity.current(s, customer_id)
        contact_id = identity.value_of(s, customer.id, "hubspot")
        language = customer.language
        row = s.get(Ticket, ticket_id) if ticket_id is not None else None
        hubspot_ticket_id = row.hubspot_ticket_id if row is not None else None
    if contact_id is None:
        contact_id = identity.hubspot_contact(customer_id, call.person(), call.key, ACTOR)
    words = _words(language)
    inbound = call.direction == "inbound"
    ours, theirs = call.our_number or "", call.phone or ""
    title = f"{words['inbound' if inbound else 'outbound']} {words['call']}"
    if call.missed:
        title = words["voicemail"] if call.voicemail else words["missed"]
    body = [f"{words['agent']}: {call.agent}" if call.agent else None,
            f"{words['reason']}: {call.missed_reason}" if call.missed_reason else None,
            f"{words['recording']}: {call.asset}" if call.asset else None]
    body += [f"{words['tag']}: {tag.name or tag.id}" for tag in call.tags]
    body += [f"{words['comment']}: {comment.content}" for comment in call.comments if comment.content]
    key = f"hubspot-call:{call.key}"
    prop = config.intake.hubspot_key_property
    # hs_call_duration is in milliseconds, hs_timestamp epoch ms (docs/vendors/hubspot.md#calls).
    properties = {"hs_timestamp": str(int(call.started_at.timestamp() * 1000)), "hs_call_title": title,
                  "hs_call_body": "<br>".join(line for line in body if line),
                  "hs_call_direction": "INBOUND" if inbound else "OUTBOUND",
                  "hs_call_duration": str(call.duration_s * 1000),
                  "hs_call_status": "COMPLETED" if call.answered else ("MISSED" if inbound else "NO_ANSWER"),
                  "hs_call_from_number": theirs if inbound else ours,
                  "hs_call_to_number": ours if inbound else theirs, prop: key}
    recording = call.recording or call.voicemail
    if recording and recording.startswith("https://"):  # HubSpot fetches it and takes HTTPS only
        properties["hs_call_recording_url"] = recording
    properties = {name: value for name, value in properties.items() if value not in (None, "")}

    def find() -> str | None:
        found = hubspot.find_call(prop, key)
        return found.id if found else None

    logged_before = effects.recorded(key) is not None
    def create() -> str:
        return hubspot.create_call(properties, contact_id, ticket_id=hubspot_ticket_id).id

    call_id = effects.once(key, create, find=find)
    if not logged_before:
        with store.session() as s:
            audit.record(s, ACTOR, "call.logged", customer_id=customer_id, aircall_call_id=call.id,
                         hubspot_call_id=call_id, contact_id=contact_id, ticket_id=ticket_id)
    return call_id


def _erased(call: Call, event: inbox.Event) -> bool:
    return tombstones.blocked(ACTOR, inbox_id=event.id, aircall_call=call.id)


def _hidden(call: Call) -> None:
    with store.session() as s:
        audit.record(s, ACTOR, "call.unidentified", aircall_call_id=call.id, reason="hidden number")


def handle_ended(call: Call, received_at: datetime) -> str | None:
    """A call that ended: its ticket (own, an open one, or none), the note on an open one, its tags and comments,
    and the HubSpot call (none for a hidden number, which has no contact). The HubSpot call id."""
    customer_id = _caller(call, received_at)
    if customer_id is None:
        _hidden(call)
    ticket_id, own = ticket_of(call, customer_id, received_at)
    if ticket_id is not None and not own:
        _call_note(call, ticket_id)
    _tags_and_comments(call, ticket_id)
    return _log_call(call, customer_id, ticket_id) if customer_id is not None else None


def on_call_ended(event: inbox.Event) -> str | None:
    call = Call.of(event)
    if _erased(call, event):  # a late event of an erased person's call: not copied back (flows/privacy/retention.py)
        return None
    return handle_ended(call, event.received_at)


def on_voicemail_left(event: inbox.Event) -> int | None:
    """A voicemail may come before its `call.ended`: the ticket (own or the open one, noted) is made now."""
    call = Call.of(event)
    if not call.voicemail or not settings.get().config.intake.ticket_on_voicemail or _erased(call, event):
        return None
    customer_id = _caller(call, event.received_at)
    ticket_id, own = ticket_of(call, customer_id, event.received_at)
    if ticket_id is not None and not own:
        _call_note(call, ticket_id)
    return ticket_id


def on_call_annotated(event: inbox.Event) -> int:
    """`call.tagged` or `call.commented` (any time after the call, even days): the call's tags and comments on
    its ticket. A call without a ticket keeps them in Aircall (and in its HubSpot call body when they came before
    `call.ended`). How many the call has."""
    call = Call.of(event)
    if _erased(call, event):
        return 0
    if not call.ended and effects.recorded(f"aircall-call-ticket:{call.id}") is None:
        return 0  # tagged during the call: whether it was missed is not known yet, and call.ended brings its tags
    customer_id = _caller(call, event.received_at)
    ticket_id, _ = ticket_of(call, customer_id, event.received_at)
    return _tags_and_comments(call, ticket_id)


def annotate(call: Call) -> int:
    """The tags and comments of a call already handled, read from a listing (the reconcile's backfill); how many
    notes were posted now. A call whose ticket was never decided is left to its `call.ended`."""
    decision = effects.recorded(f"aircall-call-ticket:{call.id}")
    if decision is None or decision == NONE:
        return 0
    if decision == OWN:
        with store.session() as s:
            ticket_id = s.scalar(select(Ticket.id).where(Ticket.source_key == call.key))
    else:
        ticket_id = int(decision)
    keys = [f"happyfox-note:aircall-tag:{call.id}:{tag.id}" for tag in call.tags] + \
        [f"happyfox-note:aircall-comment:{comment.id}" for comment in call.comments]
    new = [key for key in keys if effects.recorded(key) is None]
    if new:
        _tags_and_comments(call, ticket_id)
    return len(new) if ticket_id is not None else 0
