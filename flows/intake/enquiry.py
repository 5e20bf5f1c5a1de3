"""Intake: every enquiry, whatever its channel, becomes one HappyFox ticket, one HubSpot contact, one mirrored
HubSpot ticket associated to it, and a confirmation mail carrying the ticket's display id (policy 000, 001:
docs/policy.md#channels, docs/policy.md#confirmation).

`register(enquiry)` is the one flow; each channel only turns its event into an `Enquiry`:
form (`form`), manual entry (`manual`: post, fax, social media, in person), the support mailbox (a HappyFox
ticket Switchboard did not create) and a missed call or voicemail (`flows/intake/calls.py`).

Each step is an outbound write through `effects.once` with a key stamped on the remote object
(`happyfox-ticket:<enquiry key>` in the HappyFox custom field, `hubspot-ticket:<enquiry key>` in a HubSpot ticket
property), so a job that crashed after any write and runs again creates nothing twice. A first attempt makes
four API calls: HappyFox create, HubSpot batch upsert, HubSpot ticket create with its association inline, and the
confirmation mail's record on the contact and the ticket (flows/engagements.py).
"""
from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.records import HappyFoxTicket, HappyFoxTicketFields
from core import audit, settings, store, workdays
from core.models import Ticket
from core.reports import ManualReport
from flows import effects, engagements, identity, inbox, payloads, vendors
from flows.identity import Person
from flows.privacy import tombstones

log = logging.getLogger(__name__)
ACTOR = "intake"
DEFAULT_CATEGORY = "egyeb"


@dataclass
class Enquiry:
    channel: str                      # form | email | phone | post | fax | social | in_person
    key: str                          # the idempotency base of every write: "inbox:17", "happyfox:1003"
    person: Person
    subject: str
    details: str = ""
    category: str = DEFAULT_CATEGORY  # a key of config categories
    service_area: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    attachments: list[dict[str, Any]] = field(default_factory=list)  # {filename, content_type, data: bytes}
    happyfox: HappyFoxTicket | None = None  # the HappyFox ticket when HappyFox made it (the mailbox channel)
    customer_id: int | None = None    # when the caller resolved the customer already
    anonymous: bool = False           # nobody to name (a call from a hidden number): a ticket without a customer

    @property
    def source_key(self) -> str:
        return self.key


# ---------------------------------------------------------------- the flow

def register(enquiry: Enquiry) -> int:
    """Run the whole intake for `enquiry`, idempotently; our ticket id."""
    ticket_id = _open(enquiry)
    _happyfox_ticket(enquiry, ticket_id)
    contact_id = None if enquiry.anonymous else _hubspot_contact(enquiry, ticket_id)
    _hubspot_ticket(enquiry, ticket_id, contact_id)
    _confirm(enquiry, ticket_id)
    return ticket_id


def _open(enquiry: Enquiry) -> int:
    """Record the customer and our ticket (once per enquiry key); audit the registration."""
    with store.session() as s:
        if enquiry.anonymous:
            return _row(s, enquiry, None)
        if enquiry.customer_id is not None:
            customer = identity.current(s, enquiry.customer_id)
            identity.touch(customer, enquiry.received_at)
        else:
            customer = identity.resolve(s, enquiry.person, ACTOR, at=enquiry.received_at)
        # A phone-only enquiry from a customer we know by email still gets its confirmation mail.
        enquiry.person.email = enquiry.person.email or identity.value_of(s, customer.id, "email")
        enquiry.person.phone = enquiry.person.phone or identity.value_of(s, customer.id, "phone")
        enquiry.person.first_name = enquiry.person.first_name or customer.first_name
        enquiry.person.last_name = enquiry.person.last_name or customer.last_name
        enquiry.person.language = enquiry.person.language or customer.language
        enquiry.customer_id = customer.id
        return _row(s, enquiry, customer.id)


def _row(s: Session, enquiry: Enquiry, customer_id: int | None) -> int:
    """Our ticket of the enquiry, made once per enquiry key."""
    config = settings.get().config
    ticket = s.scalar(select(Ticket).where(Ticket.source_key == enquiry.source_key))
    if ticket is None:
        ticket = Ticket(source_key=enquiry.source_key, customer_id=customer_id, channel=enquiry.channel,
                        category=enquiry.category, service_area=enquiry.service_area,
                        subject=enquiry.subject, status="New", opened_at=enquiry.received_at,
                        confirm_due_at=workdays.due_after_working_days(
                            enquiry.received_at, config.sla.confirm_within_working_days),
                        first_response_due_at=workdays.due_after_working_days(
                            enquiry.received_at, config.sla.first_response_within_working_days))
        if enquiry.happyfox is not None:
            ticket.happyfox_id = enquiry.happyfox.id
            ticket.happyfox_display_id = enquiry.happyfox.display_id
        s.add(ticket)
        s.flush()
        audit.record(s, ACTOR, "ticket.registered", customer_id=customer_id, ticket_id=ticket.id,
                     channel=enquiry.channel, category=enquiry.category, key=enquiry.key)
    return ticket.id


def _happyfox_ticket(enquiry: Enquiry, ticket_id: int) -> None:
    if enquiry.happyfox is not None:
        user = enquiry.happyfox.user
        _link(ticket_id, "happyfox", user.id if user else None)
        return
    config = settings.get().config
    happyfox = vendors.get().happyfox
    key = f"happyfox-ticket:{enquiry.key}"
    key_field = vendors.happyfox_field_id(config.intake.happyfox_key_field)
    custom_fields: dict[int, Any] = {key_field: key}
    values = {"service_area": enquiry.service_area, "channel": enquiry.channel, "category": enquiry.category}
    for name, wanted in config.intake.happyfox_fields.items():
        if values.get(name):
            custom_fields[vendors.happyfox_field_id(wanted)] = values[name]
    category = config.categories.get(enquiry.category) or config.categories[DEFAULT_CATEGORY]
    person = enquiry.person

    def created(ticket: HappyFoxTicket) -> tuple[str, dict[str, Any]]:
        return str(ticket.id), {"display_id": ticket.display_id, "user_id": ticket.user.id if ticket.user else None}

    def create() -> tuple[str, dict[str, Any]]:
        return created(happyfox.create_ticket(
            subject=enquiry.subject, text=_text(enquiry), category=category.happyfox, email=person.email,
            name=_full_name(person) or person.email or person.phone, phone=person.phone,
            priority=config.intake.happyfox_priority, custom_fields=custom_fields,
            attachments=enquiry.attachments or None))

    def find() -> tuple[str, dict[str, Any]] | None:
        ticket = happyfox.find_ticket(key_field, key)
        return created(ticket) if ticket else None

    remote_id, detail = effects.once_detail(key, create, find=find)
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        if ticket.happyfox_id is None:
            ticket.happyfox_id = int(remote_id)
            ticket.happyfox_display_id = detail.get("display_id")
            audit.record(s, ACTOR, "happyfox.ticket_created", customer_id=ticket.customer_id, ticket_id=ticket.id,
                         happyfox_id=int(remote_id))
    _link(ticket_id, "happyfox", detail.get("user_id"))


def _hubspot_contact(enquiry: Enquiry, ticket_id: int) -> str:
    with store.session() as s:
        row = s.get(Ticket, ticket_id)
        customer_id = row.customer_id if row is not None else None
    assert customer_id is not None
    return identity.hubspot_contact(customer_id, enquiry.person, enquiry.key, ACTOR)


def _hubspot_ticket(enquiry: Enquiry, ticket_id: int, contact_id: str | None) -> None:
    config = settings.get().config
    hubspot = vendors.get().hubspot
    key = f"hubspot-ticket:{enquiry.key}"
    prop = config.intake.hubspot_key_property
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        display_id = ticket.happyfox_display_id
    category = config.categories.get(enquiry.category) or config.categories[DEFAULT_CATEGORY]
    properties = {"subject": f"{display_id} {enquiry.subject}" if display_id else enquiry.subject,
                  "content": _text(enquiry), "hs_pipeline": config.hubspot.pipeline,
                  "hs_pipeline_stage": config.hubspot.default_stage, "hs_ticket_category": category.hubspot,
                  prop: key}

    def find() -> str | None:
        found = hubspot.find_ticket(prop, key)
        return found.id if found else None

    def create() -> str:
        return hubspot.create_ticket(properties, contact_id=contact_id).id

    remote_id = effects.once(key, create, find=find)
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        if ticket.hubspot_ticket_id is None:
            ticket.hubspot_ticket_id = remote_id
            audit.record(s, ACTOR, "hubspot.ticket_mirrored", customer_id=ticket.customer_id, ticket_id=ticket.id,
                         hubspot_ticket_id=remote_id, contact_id=contact_id)


def _confirm(enquiry: Enquiry, ticket_id: int) -> None:
    """The confirmation mail with the ticket's display id, sent once (policy 000: on creation; 001: within
    two working days)."""
    config = settings.get().config
    person = enquiry.person
    if enquiry.channel not in config.intake.confirm_channels:
        return
    if enquiry.anonymous:  # its address only stands in for nobody (flows/intake/calls.py)
        with store.session() as s:
            audit.record(s, ACTOR, "ticket.not_confirmed", ticket_id=ticket_id, reason="hidden number")
        return
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        display_id = ticket.happyfox_display_id or str(ticket.happyfox_id)
        confirmed = ticket.confirmed_at is not None
    if confirmed:
        # Confirmed before a crash that came before its record on HubSpot: recorded now (nothing is resent).
        engagements.mail_sent(f"confirmation:{enquiry.key}", ticket_id, "confirmation",
                              config.intake.confirmation_template, person.language or "hu")
        return
    to = person.email
    if not to:
        with store.session() as s:
            audit.record(s, ACTOR, "ticket.not_confirmed", ticket_id=ticket_id, reason="no email address")
        return
    key = f"confirmation:{enquiry.key}"
    mail = vendors.get().mail
    language = person.language or "hu"
    effects.send_once(key, lambda: mail.send(
        to, config.intake.confirmation_template, language, message_id=_message_id(key),
        ticket_id=display_id, subject=enquiry.subject, name=_greeting_name(person),
        working_days=config.sla.confirm_within_working_days))
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        if ticket.confirmed_at is None:
            ticket.told_id, ticket.confirmed_at = display_id, datetime.now(timezone.utc)
            audit.record(s, ACTOR, "ticket.confirmed", customer_id=ticket.customer_id, ticket_id=ticket.id,
                         told_id=display_id)
    engagements.mail_sent(key, ticket_id, "confirmation", config.intake.confirmation_template, language)


def _link(ticket_id: int, system: str, value: Any) -> None:
    if value in (None, ""):
        return
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        if ticket.customer_id is not None:  # an anonymous ticket has nobody to link
            identity.link(s, ticket.customer_id, system, value, ACTOR)


# ---------------------------------------------------------------- wording

def _full_name(person: Person) -> str | None:
    """Hungarian order (family name first) for Hungarian customers, as the policies write names."""
    parts = [person.last_name, person.first_name] if (person.language or "hu") == "hu" else \
        [person.first_name, person.last_name]
    name = " ".join(p for p in parts if p)
    return name or None


def _greeting_name(person: Person) -> str:
    return _full_name(person) or ""


def split_name(name: str | None, language: str = "hu") -> tuple[str | None, str | None]:
    """(first, last) from one name field: the family name comes first in Hungarian, last in English."""
    words = (name or "").split()
    if not words:
        return None, None
    if len(words) == 1:
        return words[0], None
    if language == "hu":
        return " ".join(words[1:]), words[0]
    return " ".join(words[:-1]), words[-1]


def _text(enquiry: Enquiry) -> str:
    body = enquiry.details or enquiry.subject
    facts = [f"Channel: {enquiry.channel}"]
    if enquiry.service_area:
        facts.append(f"Service area: {enquiry.service_area}")
    return f"{body}\n\n--\n" + "\n".join(facts)


def _message_id(key: str) -> str:
    """A stable Message-ID for the key, so a resend (were there one) is recognisably the same message."""
    return "switchboard." + re.sub(r"[^A-Za-z0-9.-]", "-", key)


# ---------------------------------------------------------------- channels

def enquiry_from_form(event: inbox.Event) -> Enquiry:
    config = settings.get().config
    submission = payloads.read(event, payloads.FormSubmission)
    form = submission.form or config.default_form
    spec = config.forms.get(form)
    if spec is None:  # stored before its form left the YAML: a replay after the form is back will run
        raise payloads.invalid(event, "form", "not_configured")
    fields = dict(submission.fields)
    first, last = fields.get("first_name"), fields.get("last_name")
    if not (first or last) and fields.get("name"):
        first, last = split_name(fields["name"], spec.language)
    category = fields.get(spec.category_field) if spec.category_field else None
    attachments = [{"filename": a.filename, "content_type": a.content_type, "data": a.data}
                   for a in submission.attachments]
    # The form's language field, else the language of the customer's earlier tickets, else the form's.
    posted = fields.get(spec.language_field) if spec.language_field else None
    language = posted if posted in ("hu", "en") else \
        _earlier_language(fields.get("email"), fields.get("phone")) or spec.language
    return Enquiry(channel="form", key=f"inbox:{event.id}",
                  person=Person(email=fields.get("email"), phone=fields.get("phone"), first_name=first,
                                last_name=last, language=language),
                  subject=fields.get("summary") or fields.get("purpose") or "(no subject)",
                  details=fields.get("details", ""),
                  category=category if category in config.categories else DEFAULT_CATEGORY,
                  service_area=fields.get(spec.service_area_field) if spec.service_area_field else None,
                  received_at=event.received_at, attachments=attachments)


def enquiry_from_manual(event: inbox.Event) -> Enquiry:
    config = settings.get().config
    manual = payloads.read(event, ManualReport)
    attachments = [{"filename": a.filename, "content_type": a.content_type, "data": base64.b64decode(a.data_b64)}
                   for a in manual.attachments]
    return Enquiry(channel=manual.channel, key=f"inbox:{event.id}",
                  person=Person(email=manual.email, phone=manual.phone, first_name=manual.first_name,
                                last_name=manual.last_name,
                                language=manual.language or _earlier_language(manual.email, manual.phone) or "hu"),
                  subject=manual.subject, details=manual.details,
                  category=manual.category if manual.category in config.categories else DEFAULT_CATEGORY,
                  received_at=manual.received_at or event.received_at, attachments=attachments)


def _earlier_language(email: str | None, phone: str | None) -> str | None:
    """The language a known customer's earlier tickets were handled in (kept on the customer)."""
    if not (email or phone):
        return None
    with store.session() as s:
        found = identity.find(s, email=email, phone=phone)
        return found[0].language if found else None


def on_form(event: inbox.Event) -> int:
    return register(enquiry_from_form(event))


def on_manual(event: inbox.Event) -> int:
    return register(enquiry_from_manual(event))


# ---------------------------------------------------------------- the support mailbox (HappyFox-made tickets)

def stamped_key(ticket: HappyFoxTicketFields) -> str | None:
    """Our idempotency key on a HappyFox ticket, when Switchboard created it."""
    wanted = settings.get().config.intake.happyfox_key_field
    for item in ticket.custom_fields:
        if (item.name == wanted or str(item.id) == str(wanted)) and item.value:
            return str(item.value)
    return None


def _known(happyfox_id: int) -> Ticket | None:
    with store.session() as s:
        return s.scalar(select(Ticket).where(Ticket.happyfox_id == happyfox_id))


def _complete(ticket: Ticket) -> bool:
    return ticket.hubspot_ticket_id is not None and (ticket.confirmed_at is not None or ticket.told_id is not None)


def _customer_replied(ticket: Ticket, hint: HappyFoxTicketFields) -> None:
    """A reply by the customer on a known ticket is activity: retention counts from the last one."""
    newest = max(hint.updates, key=lambda u: u.update_id or 0, default=None)
    if ticket.customer_id is None or newest is None or newest.by is None or newest.by.type != "user":
        return
    at = newest.timestamp
    with store.session() as s:
        identity.touch(identity.current(s, ticket.customer_id), at)


def enquiry_from_happyfox(ticket: HappyFoxTicket, received_at: datetime) -> Enquiry:
    config = settings.get().config
    user = ticket.user
    category = next((name for name, spec in config.categories.items() if spec.happyfox == ticket.category_id),
                    DEFAULT_CATEGORY)
    phone = user.primary_phone.number if user and user.primary_phone else None
    first, last = split_name(user.name if user else None, "hu")
    return Enquiry(channel="email", key=f"happyfox:{ticket.id}",
                  person=Person(email=user.email if user else None, phone=phone, first_name=first, last_name=last),
                  subject=ticket.subject or "(no subject)", details=ticket.first_message or "",
                  category=category, received_at=received_at, happyfox=ticket)


def erased_ticket(happyfox_id: int, inbox_id: int | None = None) -> bool:
    """A ticket of an erased person that a stale HappyFox still shows: not copied back (flows/privacy/tombstones.py)."""
    return tombstones.blocked(ACTOR, inbox_id=inbox_id, happyfox_ticket=happyfox_id)


def on_happyfox_ticket(event: inbox.Event) -> int | None:
    """A HappyFox ticket event. A ticket Switchboard created (our key stamped on it, or its id known) is left to
    the other flows; one HappyFox created from the support mailbox is linked to its customer and mirrored like a
    form's. The body is only a hint: the ticket is re-read before anything is written
    (docs/vendors/happyfox.md#webhooks)."""
    change = payloads.read(event, payloads.HappyFoxTicketEvent)
    hint, happyfox_id = change.hint, change.ticket_id
    known = _known(happyfox_id)
    if known is not None:
        _customer_replied(known, hint)
        if known.source_key != f"happyfox:{happyfox_id}" or _complete(known):
            return None
    # Ours with its id not recorded yet (the echo can beat our own record), or an erased person's.
    if stamped_key(hint) or erased_ticket(happyfox_id, event.id):
        return None
    ticket = vendors.get().happyfox.get_ticket(happyfox_id)
    if stamped_key(ticket):
        return None
    # The mail arrived when HappyFox made the ticket, not when its webhook reached us.
    received = ticket.created_at or event.received_at
    return register(enquiry_from_happyfox(ticket, received))
