"""Rectification from HubSpot (GDPR Art. 16, and keeping the systems consistent): HubSpot owns contact properties,
so an email or phone corrected there, two contacts merged there, or HubSpot's own GDPR delete reach us as contact
events and are carried to our identity graph and the other systems.

- `contact.propertyChange` for `email`, `phone` or `mobilephone`: the new value becomes the customer's first
  identity of that kind (the one flows write and mail to; the old one stays an identity, so that an erasure still
  finds the mail and calls it named), and each HappyFox contact and each linked Aircall contact of the customer is
  updated. Our own write echoed back (the value is first already) costs no write. A blanked property rectifies
  nothing.
- A HappyFox contact's email corrected there (no contact webhook exists: seen in its next ticket event): the same,
  carried to the HubSpot contact and the Aircall contacts.
- `contact.merge`: our customers behind the merged contacts become one (audited as `customer.merged`), and the
  surviving contact is made the customer's first HubSpot identity.
- `contact.privacyDeletion`: HubSpot deleted the person for GDPR; we open the erasure of that person everywhere.
Audit rows carry the kind of identity changed, never the value: `customer.rectified` for our identities and
`rectification.written` for each vendor record written. A verified rectification request of the customer lists
each system corrected in its outcome (`requests.note_rectified`), which its completion mail names.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.errors import NotFound
from connectors.records import AircallContactRecord, HappyFoxUser
from core import audit, store
from core.models import Audit, Customer, Erasure
from flows import identity, inbox, payloads, vendors
from flows.privacy import erasure, requests

ACTOR = "hubspot"
PROPERTIES = {"email": "email", "phone": "phone", "mobilephone": "phone"}
KINDS = ("email", "phone")


def on_hubspot_contact_change(event: inbox.Event) -> str | None:
    change = payloads.read(event, payloads.HubSpotEvent)
    system = PROPERTIES.get(change.property_name or "")
    if system is None:
        return None
    value = identity.normalise(system, change.property_value)
    if not value:
        return None
    with store.session() as s:
        found = identity.find(s, hubspot=str(change.object_id))
        if not found:
            return None
        customer = found[0]
        changed = identity.value_of(s, customer.id, system) != value
        if changed:
            customer = identity.add_identity(s, customer, system, value, ACTOR)  # merges a customer who had it
            identity.put_first(s, customer.id, system, value, ACTOR)
            audit.record(s, ACTOR, "customer.rectified", customer_id=customer.id, system=system, source="hubspot")
            # Staff corrected HubSpot (the source) and we our identities: both are systems the request names.
            requests.note_rectified(s, customer.id, "hubspot", system)
            requests.note_rectified(s, customer.id, "switchboard", system)
        customer_id = customer.id
        happyfox_users = identity.values_of(s, customer.id, "happyfox")
        # A retry after a vendor outage finds our identities changed already; the audit row says they were.
        retry = not changed and event.retry and _rectified_before(s, customer.id, system)
    # HappyFox is read before it is written: our own change echoed back costs no write, and a retry after a
    # HappyFox outage (our identities already changed) still reaches it.
    happyfox = vendors.get().happyfox
    for user_id in happyfox_users:
        user = happyfox.get_user(user_id)
        if system == "email" and (user.email or "").lower() != value:
            happyfox.update_user(user_id, email=value)
            _written(customer_id, "happyfox", system, user_id, "replaced", "hubspot")
        elif system == "phone" and identity.normalise("phone", user.primary_phone.number if user.primary_phone
                                                      else None) != value:
            happyfox.update_user(user_id, phones=[{"type": "m", "number": value, "is_primary": True}])
            _written(customer_id, "happyfox", system, user_id, "replaced", "hubspot")
    # Aircall is not touched by an echo or a duplicate: only when we changed, or on the retry of a change.
    if changed or retry:
        reach_aircall(customer_id, [system], "hubspot")
    if not changed:
        return "unchanged"
    return "rectified"


def on_happyfox_ticket(event: inbox.Event) -> str | None:
    """HappyFox documents no contact webhook, so a contact's email or phone corrected there shows in the next ticket
    event of that contact. The email: when the ticket's user shows one other than the customer's first. The phone:
    when it shows a primary number the customer does not have at all (a customer may have called from several,
    so a known number is no correction). Then the contact is read to be sure, the value goes first in our identities
    and to the HubSpot contact. An event whose user shows what we have costs nothing."""
    change = payloads.read(event, payloads.HappyFoxTicketEvent)
    user = change.hint.user
    if user is None:
        return None
    with store.session() as s:
        found = identity.find(s, happyfox=str(user.id))
        if not found:
            return None
        customer_id = found[0].id
        # A retry after a HubSpot or Aircall outage finds our identities corrected already: the audit rows say
        # which kinds were, and the vendors are read again for them.
        pending = bool(_corrections(s, customer_id, user))
        retried = [] if pending or not event.retry else [
            kind for kind in KINDS if _rectified_before(s, customer_id, kind, "happyfox")]
        if not pending and not retried:
            return None
    corrected: dict[str, str] = {}
    if pending:
        contact = vendors.get().happyfox.get_user(user.id)
        with store.session() as s:
            customer = identity.find(s, happyfox=str(user.id))[0]
            corrected = _corrections(s, customer.id, contact)
            for kind, value in corrected.items():
                customer = identity.add_identity(s, customer, kind, value, "happyfox")
                identity.put_first(s, customer.id, kind, value, "happyfox")
                audit.record(s, "happyfox", "customer.rectified", customer_id=customer.id, system=kind,
                             source="happyfox")
                requests.note_rectified(s, customer.id, "happyfox", kind)
                requests.note_rectified(s, customer.id, "switchboard", kind)
            customer_id = customer.id
    with store.session() as s:
        customer_id = identity.current(s, customer_id).id
        firsts = {kind: identity.value_of(s, customer_id, kind) for kind in retried}
        wanted = corrected or {kind: first for kind, first in firsts.items() if first is not None}
        contacts = identity.values_of(s, customer_id, "hubspot")
    if not wanted:
        return None
    hubspot = vendors.get().hubspot
    for contact_id in contacts[:1]:  # the first is the one flows write to; the others are merged into it
        shown = hubspot.get_contact(contact_id, properties=list(wanted))
        stale = {kind: value for kind, value in wanted.items()
                 if identity.normalise(kind, shown.prop(kind)) != value}
        if stale:
            hubspot.update_contact(contact_id, stale)
            for kind in stale:
                _written(customer_id, "hubspot", kind, contact_id, "replaced", "happyfox")
    reach_aircall(customer_id, list(wanted), "happyfox")
    return "rectified"


def _corrections(s: Session, customer_id: int, user: HappyFoxUser) -> dict[str, str]:
    """What the HappyFox contact shows that our identities lack: kind -> normalised value."""
    found: dict[str, str] = {}
    email = identity.normalise("email", user.email)
    if email and identity.value_of(s, customer_id, "email") != email:
        found["email"] = email
    phone = identity.normalise("phone", user.primary_phone.number if user.primary_phone else None)
    if phone and phone not in identity.values_of(s, customer_id, "phone"):
        found["phone"] = phone
    return found


def _rectified_before(s: Session, customer_id: int, kind: str, source: str = "hubspot") -> bool:
    """Whether a `customer.rectified` of this kind from `source` is on record for the customer."""
    rows = s.scalars(select(Audit.detail).where(Audit.customer_id == customer_id,
                                                Audit.action == "customer.rectified"))
    return any((d or {}).get("system") == kind and (d or {}).get("source") == source for d in rows)


def _written(customer_id: int, processor: str, kind: str, record_id: str, how: str, source: str) -> None:
    """One vendor record corrected: audited (the kind, never the value) and noted on the customer's request."""
    with store.session() as s:
        audit.record(s, source, "rectification.written", customer_id=customer_id, processor=processor,
                     system=kind, record_id=str(record_id), how=how, source=source)
        requests.note_rectified(s, customer_id, processor, kind)


def reach_aircall(customer_id: int, kinds: Iterable[str], source: str) -> int:
    """Carry the customer's first email and phone (`kinds`) to each Aircall contact linked to them; the number of
    details written. A contact already showing the value costs one read and no write, so a second run writes
    nothing. The value being replaced (the second identity of its kind: `put_first` moved it there) is replaced
    in place, keeping its detail id and label, so a contact never goes without a phone and gets no duplicate;
    a contact that lacks it gets the value added. A customer with no linked contact costs no call: contacts
    staff made in Aircall for a person who never called are not searched for (docs/vendors/aircall.md#contacts)."""
    with store.session() as s:
        customer_id = identity.current(s, customer_id).id
        contact_ids = identity.values_of(s, customer_id, "aircall")
        values = {kind: identity.values_of(s, customer_id, kind) for kind in kinds}
    values = {kind: found for kind, found in values.items() if found}
    if not contact_ids or not values:
        return 0
    aircall = vendors.get().aircall
    written = 0
    for contact_id in contact_ids:
        try:
            contact = aircall.get_contact(contact_id)
        except NotFound:  # deleted in Aircall since: nothing there to correct
            continue
        for kind, found in values.items():
            how = _correct_detail(contact, kind, found[0], found[1] if len(found) > 1 else None)
            if how:
                _written(customer_id, "aircall", kind, contact.id, how, source)
                written += 1
    return written


def _correct_detail(contact: AircallContactRecord, kind: str, value: str, replaced: str | None) -> str | None:
    """Make the contact show `value`: "replaced" (the detail holding `replaced` now holds it), "added", or None
    when it shows it already."""
    details = contact.phone_numbers if kind == "phone" else contact.emails
    shown = {identity.normalise(kind, d.value): d for d in details}
    if value in shown:
        return None
    aircall = vendors.get().aircall
    stale = shown.get(replaced) if replaced else None
    if stale is not None and stale.id is not None:
        aircall.update_detail(contact.id, kind, stale.id, value, label=stale.label)
        return "replaced"
    aircall.add_detail(contact.id, kind, value)
    return "added"


def on_hubspot_contact_merge(event: inbox.Event) -> int | None:
    merge = payloads.read(event, payloads.HubSpotMerge)
    survivor = str(merge.new_object_id or merge.primary_object_id or merge.object_id)
    contact_ids = {str(i) for i in (merge.object_id, merge.primary_object_id, merge.new_object_id,
                                    *merge.merged_object_ids) if i is not None}
    with store.session() as s:
        customers: dict[int, Customer] = {}
        for contact_id in sorted(contact_ids):
            for customer in identity.find(s, hubspot=contact_id):
                customers[customer.id] = customer
        if not customers:
            return None
        ordered = sorted(customers.values(), key=lambda c: (c.created_at, c.id))
        keep = ordered[0]
        for other in ordered[1:]:
            keep = identity.merge(s, keep, other, ACTOR, reason="HubSpot contact merge")
        identity.put_first(s, keep.id, "hubspot", survivor, ACTOR)
        return keep.id


def on_hubspot_privacy_deletion(event: inbox.Event) -> int | None:
    change = payloads.read(event, payloads.HubSpotEvent)
    with store.session() as s:
        found = identity.find(s, hubspot=str(change.object_id))
        if not found:
            return None
        customer_id = found[0].id
        under_way = s.scalar(select(Erasure.id).where(Erasure.customer_id == customer_id,
                                                     Erasure.status.in_(erasure.OPEN)).limit(1))
    if under_way is not None:
        # Our own erasure's GDPR delete, echoed by HubSpot: the erasure under way has it in hand (starting it
        # again would run its steps in a worker beside the command that runs them).
        return int(under_way)
    erasure_id = erasure.request(customer_id=customer_id, reason="hubspot_gdpr_delete", actor=ACTOR)
    erasure.start(erasure_id)
    return erasure_id
