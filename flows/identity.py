"""Who a report is from: one `Customer` per person, found by any identity they have shown us.

Identities are (system, value) pairs: `email` (lower-cased), `phone` (E.164, default region HU), and the vendors'
own ids (`hubspot`, `happyfox`, `aircall`). Two customers that turn out to share an identity are one person: they
are merged into the older one and the merge is audited (`core.audit`); their HubSpot contacts follow in a job
(`flows/contact_merge.py`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import phonenumbers
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, jobs, store
from core.addresses import mailbox_or_none
from core.models import Customer, Erasure, Identity, Ticket

from . import effects, vendors

log = logging.getLogger(__name__)

DEFAULT_REGION = "HU"
SYSTEMS = ("email", "phone", "hubspot", "happyfox", "aircall")


def normalise_email(value: str | None) -> str | None:
    """The single mailbox, normalised (core/addresses.py), or None when it is not one: a list, a group or a
    display name from a vendor is dropped rather than mailed."""
    return mailbox_or_none(value) if value else None


def normalise_phone(value: str | None, region: str = DEFAULT_REGION) -> str | None:
    """E.164 (`+36301234567`), reading a national number as Hungarian; None for hidden or impossible numbers."""
    if not value or not isinstance(value, str):
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise(system: str, value: str | int | None) -> str | None:
    if value is None or value == "":
        return None
    if system == "email":
        return normalise_email(str(value))
    if system == "phone":
        return normalise_phone(str(value))
    return str(value).strip() or None


@dataclass
class Person:
    """What an inbound event tells us about its sender; any field may be missing."""
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    language: str | None = None

    def __post_init__(self) -> None:
        self.email = normalise_email(self.email)
        self.phone = normalise_phone(self.phone)

    @property
    def known(self) -> dict[str, str]:
        return {system: value for system, value in (("email", self.email), ("phone", self.phone)) if value}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _live(s: Session, customer: Customer | None) -> Customer | None:
    """Follow merges to the customer that survived."""
    seen = set()
    while customer is not None and customer.merged_into_id is not None and customer.id not in seen:
        seen.add(customer.id)
        customer = s.get(Customer, customer.merged_into_id)
    return customer


def find(s: Session, **identities: str | int | None) -> list[Customer]:
    """The distinct customers any of the given identities (`email=`, `phone=`, `hubspot=`...) belong to,
    oldest first."""
    pairs = [(system, normalise(system, value)) for system, value in identities.items()]
    pairs = [(system, value) for system, value in pairs if value]
    found: dict[int, Customer] = {}
    for system, value in pairs:
        row = s.scalar(select(Identity).where(Identity.system == system, Identity.value == value))
        customer = _live(s, row.customer) if row is not None else None
        if customer is not None:
            found[customer.id] = customer
    return sorted(found.values(), key=lambda c: (c.created_at, c.id))


def value_of(s: Session, customer_id: int, system: str) -> str | None:
    """The customer's oldest identity in `system` (their HubSpot contact id, say), or None."""
    return s.scalar(select(Identity.value).where(Identity.customer_id == customer_id, Identity.system == system)
                    .order_by(Identity.id).limit(1))


def values_of(s: Session, customer_id: int, system: str) -> list[str]:
    return list(s.scalars(select(Identity.value).where(Identity.customer_id == customer_id,
                                                      Identity.system == system).order_by(Identity.id)))


def merge(s: Session, keep: Customer, drop: Customer, actor: str, reason: str) -> Customer:
    """Make `drop` part of `keep`: its identities and tickets move, its row points at `keep`. The older of the
    two is kept whatever the caller passed, so that a customer's id never changes under a newer one."""
    if keep.id == drop.id:
        return keep
    if (drop.created_at, drop.id) < (keep.created_at, keep.id):
        keep, drop = drop, keep
    contacts = [value_of(s, keep.id, "hubspot"), value_of(s, drop.id, "hubspot")]
    s.execute(update(Identity).where(Identity.customer_id == drop.id).values(customer_id=keep.id))
    s.execute(update(Ticket).where(Ticket.customer_id == drop.id).values(customer_id=keep.id))
    s.execute(update(Erasure).where(Erasure.customer_id == drop.id).values(customer_id=keep.id))
    s.execute(update(Customer).where(Customer.merged_into_id == drop.id).values(merged_into_id=keep.id))
    keep.first_name = keep.first_name or drop.first_name
    keep.last_name = keep.last_name or drop.last_name
    keep.last_activity_at = max(keep.last_activity_at, drop.last_activity_at)
    if drop.contract_end and (keep.contract_end is None or drop.contract_end > keep.contract_end):
        keep.contract_end = drop.contract_end
    keep.legal_hold = keep.legal_hold or drop.legal_hold
    if keep.restricted_at is None and drop.restricted_at is not None:  # a restriction outlives the merge
        keep.restricted_at, keep.restriction = drop.restricted_at, drop.restriction
    drop.merged_into_id = keep.id
    s.flush()
    s.expire(keep, ["identities"])
    s.expire(drop, ["identities"])
    pair = [c for c in contacts if c is not None]
    both = len(pair) == 2
    # With `hubspot_contacts` the row is also the lasting note that HubSpot must follow (contact_merge's sweep).
    noted: dict[str, Any] = {"hubspot_contacts": pair} if both else {}
    audit.record(s, actor, "customer.merged", customer_id=keep.id, merged_id=drop.id, reason=reason, **noted)
    if both:
        keep_id = keep.id
        store.after_commit(s, lambda: _queue_hubspot_merge(keep_id, *pair))
    log.info("merged customer %s into %s (%s)", drop.id, keep.id, reason)
    return keep


def _queue_hubspot_merge(customer_id: int, first: str, second: str) -> None:
    """Queue flows/contact_merge.py's job by name (that module imports this one). Our merge is committed: if the
    queue fails now, contact_merge's sweep queues the job later."""
    try:
        jobs.enqueue("merge_hubspot_contacts", customer_id, first, second)
    except Exception as exc:
        log.error("could not queue the HubSpot merge for customer %s (%s); the sweep will", customer_id,
                  type(exc).__name__)


def put_first(s: Session, customer_id: int, system: str, value: str, actor: str) -> None:
    """Make `value` the customer's first identity in `system`, the one `value_of` answers and flows write to
    (the contact that survived a HubSpot merge), keeping the others: webhooks still name old ids."""
    customer = current(s, customer_id)
    rows = list(s.scalars(select(Identity).where(Identity.customer_id == customer.id, Identity.system == system)
                          .order_by(Identity.id)))
    if rows and rows[0].value == value:
        return
    others = [row for row in rows if row.value != value]
    for row in others:  # re-added below, after `value`: the order is the rows' ids
        s.delete(row)
    s.flush()
    if len(others) == len(rows):
        customer = add_identity(s, customer, system, value, actor)
    s.add_all(Identity(customer_id=customer.id, system=system, value=row.value) for row in others)
    s.flush()


def add_identity(s: Session, customer: Customer, system: str, value: str | int | None, actor: str) -> Customer:
    """Record that `customer` has this identity. When another customer has it already, they are one person:
    merge. Returns the customer that holds the identity afterwards."""
    value = normalise(system, value)
    if value is None:
        return customer
    existing = s.scalar(select(Identity).where(Identity.system == system, Identity.value == value))
    if existing is None:
        try:
            with s.begin_nested():
                s.add(Identity(customer_id=customer.id, system=system, value=value))
            audit.record(s, actor, "identity.linked", customer_id=customer.id, system=system,
                         value_hash=audit.subject_hash(value))
            return customer
        except IntegrityError:  # another job linked it a moment ago
            existing = s.scalar(select(Identity).where(Identity.system == system, Identity.value == value))
            if existing is None:
                raise
    owner = _live(s, existing.customer)
    if owner is None or owner.id == customer.id:
        return customer
    return merge(s, owner, customer, actor, reason=f"shared {system}")


def resolve(s: Session, person: Person, actor: str, at: datetime | None = None) -> Customer:
    """The customer `person` is: found by any identity, created when none matches, merged when several match;
    every identity shown is recorded, names filled in where missing, and `last_activity_at` moved forward."""
    matches = find(s, **person.known)
    if matches:
        customer = matches[0]
        for other in matches[1:]:
            customer = merge(s, customer, other, actor, reason="identities of one report")
    else:
        customer = Customer(first_name=person.first_name, last_name=person.last_name,
                            language=person.language or "hu", last_activity_at=at or _utcnow())
        s.add(customer)
        s.flush()
        audit.record(s, actor, "customer.created", customer_id=customer.id)
    for system, value in person.known.items():
        customer = add_identity(s, customer, system, value, actor)
    customer.first_name = customer.first_name or person.first_name
    customer.last_name = customer.last_name or person.last_name
    touch(customer, at)
    return customer


def link(s: Session, customer_id: int, system: str, value: str | int | None, actor: str) -> Customer:
    """Record a vendor's id for the customer (their HubSpot contact, HappyFox user, Aircall contact)."""
    customer = _live(s, s.get(Customer, customer_id))
    if customer is None:
        raise LookupError(f"customer {customer_id} not found")
    return add_identity(s, customer, system, value, actor)


def touch(customer: Customer, at: datetime | None = None) -> None:
    """An inbound event from the customer: retention counts from their last activity."""
    at = at or _utcnow()
    if customer.last_activity_at is None or customer.last_activity_at < at:
        customer.last_activity_at = at


def current(s: Session, customer_id: int) -> Customer:
    customer = _live(s, s.get(Customer, customer_id))
    if customer is None:
        raise LookupError(f"customer {customer_id} not found")
    return customer


# ---------------------------------------------------------------- the customer in HubSpot

def _contact_properties(person: Person) -> dict[str, str]:
    properties = {"email": person.email, "firstname": person.first_name, "lastname": person.last_name,
                  "phone": person.phone}
    return {name: value for name, value in properties.items() if value}


def phone_contact_key(phone: str) -> str:
    """The effect key of the phone-only contact made for a number: per number, not per call, so that two calls
    from one new number at the same moment make one contact. The number is hashed (a key is no place for it);
    erasure removes the key, so that a later caller from the number is not handed the erased contact."""
    return f"hubspot-contact:phone:{audit.subject_hash(phone)}"


def hubspot_contact(customer_id: int, person: Person, key: str, actor: str) -> str:
    """The customer's HubSpot contact id, linked to the customer: upserted by email (one batch-upsert call, which
    is idempotent in itself), or for a caller without an email the contact we know, else the one found by phone,
    else a new one (HubSpot owns contact properties: a found contact is not overwritten)."""
    hubspot = vendors.get().hubspot
    if person.email:
        properties = _contact_properties(person)
        contact_id = effects.once(f"hubspot-contact:{key}", lambda: hubspot.upsert_contact(properties))
    else:
        with store.session() as s:
            known = value_of(s, current(s, customer_id).id, "hubspot")
        if known is not None:
            contact_id = known
        else:
            if not person.phone:
                from .inbox import Permanent
                raise Permanent("a HubSpot contact needs an email or a phone number")

            def find_or_create() -> str:
                found = hubspot.search_contacts(phone=person.phone)
                if found:
                    return found[0].id
                return hubspot.create_contact(_contact_properties(person)).id

            contact_id = effects.once(phone_contact_key(person.phone), find_or_create)
    with store.session() as s:
        link(s, customer_id, "hubspot", contact_id, actor)
    return str(contact_id)
