"""Phone: every Aircall call is logged as a HubSpot call on the caller's contact (direction, duration, agent, recording
link), and a missed call or a voicemail opens a ticket as the form does (docs/policy.md#channels; policy 000: a ticket
is recorded for the call; 002: the phone number is always stored). Configurable in YAML: `intake.ticket_on_missed_call`,
`intake.ticket_on_voicemail`.

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
from flows.payloads import AircallCall, AircallCallEvent, AircallContact, AircallNumber, AircallUser
from flows.privacy import tombstones

log = logging.getLogger(__name__)
ACTOR = "calls"
WORDS = {"hu": {"missed": "Nem fogadott hívás", "voicemail": "Hangüzenet", "agent": "Ügyintéző",
                "reason": "Ok", "recording": "Felvétel", "call": "hívás", "inbound": "Bejövő",
                "outbound": "Kimenő"},
         "en": {"missed": "Missed call", "voicemail": "Voicemail", "agent": "Agent", "reason": "Reason",
                "recording": "Recording", "call": "call", "inbound": "Inbound", "outbound": "Outbound"}}


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
    voicemail: str | None
    recording: str | None
    asset: str | None
    missed_reason: str | None
    agent: str | None
    contact: AircallContact

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
                   voicemail=data.voicemail, recording=data.recording, asset=data.asset,
                   missed_reason=data.missed_call_reason, agent=user.name, contact=data.contact or AircallContact())

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


def _open_ticket(call: Call, customer_id: int, received_at: datetime) -> int:
    with store.session() as s:
        language = identity.current(s, customer_id).language
    words = WORDS.get(language, WORDS["hu"])
    subject = words["voicemail"] if call.voicemail else words["missed"]
    lines = [f"{subject}: {call.phone} ({call.started_at:%Y-%m-%d %H:%M} UTC)"]
    if call.missed_reason:
        lines.append(f"{words['reason']}: {call.missed_reason}")
    if call.asset or call.voicemail:
        lines.append(f"{words['recording']}: {call.asset or call.voicemail}")
    report = enquiry.Enquiry(channel="phone", key=call.key, person=call.person(), subject=subject,
                             details="\n".join(lines), received_at=received_at, customer_id=customer_id)
    return enquiry.register(report)


def _log_call(call: Call, customer_id: int) -> str:
    """The HubSpot call on the caller's contact (and on the call's ticket, if it opened one)."""
    config = settings.get().config
    hubspot = vendors.get().hubspot
    with store.session() as s:
        customer = identity.current(s, customer_id)
        contact_id = identity.value_of(s, customer.id, "hubspot")
        language = customer.language
        hubspot_ticket_id = s.scalar(select(Ticket.hubspot_ticket_id).where(Ticket.source_key == call.key))
    if contact_id is None:
        contact_id = identity.hubspot_contact(customer_id, call.person(), call.key, ACTOR)
    words = WORDS.get(language, WORDS["hu"])
    inbound = call.direction == "inbound"
    ours, theirs = call.our_number or "", call.phone or ""
    title = f"{words['inbound' if inbound else 'outbound']} {words['call']}"
    if call.missed:
        title = words["voicemail"] if call.voicemail else words["missed"]
    body = [f"{words['agent']}: {call.agent}" if call.agent else None,
            f"{words['reason']}: {call.missed_reason}" if call.missed_reason else None,
            f"{words['recording']}: {call.asset}" if call.asset else None]
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
                         hubspot_call_id=call_id, contact_id=contact_id)
    return call_id


def _erased(call: Call, event: inbox.Event) -> bool:
    return tombstones.blocked(ACTOR, inbox_id=event.id, aircall_call=call.id)


def on_call_ended(event: inbox.Event) -> str | None:
    call = Call.of(event)
    if _erased(call, event):  # a late event of an erased person's call: not copied back (flows/privacy/retention.py)
        return None
    customer_id = _caller(call, event.received_at)
    if customer_id is None:
        with store.session() as s:
            audit.record(s, ACTOR, "call.unidentified", aircall_call_id=call.id, reason="hidden number")
        return None
    if _wants_ticket(call):
        _open_ticket(call, customer_id, event.received_at)
    return _log_call(call, customer_id)


def on_voicemail_left(event: inbox.Event) -> int | None:
    call = Call.of(event)
    if not call.voicemail or not settings.get().config.intake.ticket_on_voicemail or _erased(call, event):
        return None
    customer_id = _caller(call, event.received_at)
    if customer_id is None:
        return None
    return _open_ticket(call, customer_id, event.received_at)
