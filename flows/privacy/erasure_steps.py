"""One erasure step per processor, as a table of small functions (the Fides habit: a processor's erasure described in
one place). Each step finds the person afresh on every attempt (by the identities we hold and by searching the vendor),
deletes what it finds, and answers a receipt of ids and counts, never personal data. A delete of what is already gone
counts as done, so a step can be retried until it completes (docs/connectors.md: a 404 on delete is success).

The Switchboard step runs last, when every processor's step is done, since it removes the identities the others
find the person by.
"""
from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from connectors.errors import NotFound
from connectors.records import AircallCallRecord, AircallContactRecord, HubSpotObject
from core import models, settings
from core.models import Audit, Customer, Effect, Identity, InboxEvent, Ticket
from flows import identity, vendors
from flows.complaints.complaint_hold import Hold, aircall_moment, gmail_moment, hold_of
from flows.privacy.traces import Traces

C = TypeVar("C", HubSpotObject, AircallContactRecord)


class ContactBook(Protocol[C]):
    """A vendor's contacts as `person_contacts` reads them (HubSpot's and Aircall's clients)."""
    def get_contact(self, contact_id: str) -> C: ...

    def search_contacts(self, email: str | None = None, phone: str | None = None) -> list[C]: ...


REDACTED_TICKET = {"subject": "[erased]", "content": ""}
REDACTED_CALL = {"hs_call_title": "", "hs_call_body": "", "hs_call_from_number": "", "hs_call_to_number": "",
                 "hs_call_recording_url": ""}


@dataclass
class Subject:
    """What Switchboard knows of the person: the live customer and those merged into it."""
    customer_ids: list[int]
    ids: dict[str, list[str]] = field(default_factory=dict)   # system -> values (identities)
    happyfox_tickets: list[str] = field(default_factory=list)
    hubspot_tickets: list[str] = field(default_factory=list)
    hubspot_calls: list[str] = field(default_factory=list)
    hold: Hold = field(default_factory=Hold)  # what a complaint keeps (flows/complaints/complaint_hold.py)

    @property
    def emails(self) -> list[str]:
        return self.ids.get("email", [])

    @property
    def phones(self) -> list[str]:
        return self.ids.get("phone", [])

    def traces(self) -> Traces:
        return Traces.of(self.emails, self.phones)


def subject_of(s: Session, customer_id: int) -> Subject:
    live = identity.current(s, customer_id)
    ids = [live.id] + list(s.scalars(select(Customer.id).where(Customer.merged_into_id == live.id)))
    subject = Subject(ids)
    for item in s.scalars(select(Identity).where(Identity.customer_id.in_(ids)).order_by(Identity.id)):
        subject.ids.setdefault(item.system, []).append(item.value)
    for ticket in s.scalars(select(Ticket).where(Ticket.customer_id.in_(ids))):
        if ticket.happyfox_id:
            subject.happyfox_tickets.append(str(ticket.happyfox_id))
        if ticket.hubspot_ticket_id:
            subject.hubspot_tickets.append(ticket.hubspot_ticket_id)
    for entry in s.scalars(select(Audit).where(Audit.customer_id.in_(ids), Audit.action == "call.logged")):
        if call_id := (entry.detail or {}).get("hubspot_call_id"):
            subject.hubspot_calls.append(str(call_id))
    subject.hold = hold_of(s, ids)
    return subject


def tolerant(update: Callable[[str, dict[str, Any]], Any], object_id: str, properties: dict[str, Any]) -> None:
    try:
        update(object_id, properties)
    except NotFound:  # archived by an earlier attempt
        pass


def _count(results: dict[str, str]) -> dict[str, int]:
    return {"deleted": sum(r == "deleted" for r in results.values()),
            "already_gone": sum(r == "gone" for r in results.values())}


# ---------------------------------------------------------------- processors

def person_contacts(client: ContactBook[C], system: str, subject: Subject, *,
                    read_linked: bool = True) -> dict[str, C | None]:
    """The person's contacts at a vendor (HubSpot or Aircall: `get_contact`, `search_contacts`), by id: those we
    linked, read unless `read_linked` is False (then None; one gone since is left out when read), and those a
    search by each of their emails and phones finds."""
    contacts: dict[str, C | None] = {}
    for contact_id in subject.ids.get(system, []):
        try:
            contacts[contact_id] = client.get_contact(contact_id) if read_linked else None
        except NotFound:
            pass
    for email in subject.emails:
        contacts.update({c.id: c for c in client.search_contacts(email=email)})
    for phone in subject.phones:
        contacts.update({c.id: c for c in client.search_contacts(phone=phone)})
    return contacts


def erase_hubspot(subject: Subject) -> dict[str, Any]:
    """Blank and archive the contact's tickets and logged calls (an archived record keeps its properties in the recycle
    bin for 90 days), then GDPR-delete the contact, which removes its associations (docs/vendors/hubspot.md#deletion):
    so the contact goes last, and a retry still finds the tickets and calls through the associations."""
    hubspot = vendors.get().hubspot
    contacts = set(person_contacts(hubspot, "hubspot", subject, read_linked=False))
    tickets, calls = set(subject.hubspot_tickets), set(subject.hubspot_calls)
    for contact_id in sorted(contacts):
        try:
            tickets |= set(hubspot.associated_ids("contacts", contact_id, "tickets"))
            calls |= set(hubspot.associated_ids("contacts", contact_id, "calls"))
        except NotFound:
            pass
    held = tickets & set(subject.hold.hubspot_tickets)
    # A held ticket keeps the contact it names: GDPR delete would cut the association that documents who complained.
    kept_contacts = contacts if held else set()
    tickets, contacts = tickets - held, contacts - kept_contacts
    archived_tickets, archived_calls, deleted_contacts = {}, {}, {}
    for ticket_id in sorted(tickets):
        tolerant(hubspot.update_ticket, ticket_id, REDACTED_TICKET)
        archived_tickets[ticket_id] = hubspot.archive_ticket(ticket_id)
    for call_id in sorted(calls):
        tolerant(hubspot.update_call, call_id, REDACTED_CALL)
        archived_calls[call_id] = hubspot.archive_call(call_id)
    for contact_id in sorted(contacts):
        deleted_contacts[contact_id] = hubspot.gdpr_delete_contact(contact_id)
    receipt = {"contacts_gdpr_deleted": deleted_contacts, "tickets_archived": archived_tickets,
               "calls_archived": archived_calls,
               "counts": {"contacts": len(contacts), "tickets": len(tickets), "calls": len(calls)},
               "remote_ids": {"hubspot": sorted(contacts), "hubspot_ticket": sorted(tickets),
                              "hubspot_call": sorted(calls)}}
    if held:
        receipt["kept"] = subject.hold.kept(hubspot_ticket=held, hubspot=kept_contacts)
    return receipt


def erase_happyfox(subject: Subject) -> dict[str, Any]:
    """Delete the person's tickets; anonymise their contact, since HappyFox documents no contact delete
    (docs/vendors/happyfox.md#contacts)."""
    happyfox = vendors.get().happyfox
    users = set(subject.ids.get("happyfox", []))
    for email in subject.emails:
        users |= {str(u.id) for u in happyfox.search_users(f"email:{email}")}
    for phone in subject.phones:
        users |= {str(u.id) for u in happyfox.search_users(phone)}
    emails = set(subject.emails)
    for user_id in sorted(users):
        try:
            address = happyfox.get_user(user_id).email
        except NotFound:
            continue
        if address:
            emails.add(address.lower())
    tickets = set(subject.happyfox_tickets)
    for email in sorted(emails):
        tickets |= {str(t.id) for t in happyfox.tickets_of_contact(email)}
    held = tickets & set(subject.hold.happyfox_tickets)
    # A held ticket keeps its contact: anonymising it would leave the complaint's ticket with no complainant.
    kept_users = users if held else set()
    tickets, users = tickets - held, users - kept_users
    deleted = {ticket_id: happyfox.delete_ticket(ticket_id) for ticket_id in sorted(tickets, key=int)}
    anonymised = {}
    for user_id in sorted(users):
        try:
            happyfox.anonymise_user(user_id)
            anonymised[user_id] = "anonymised"
        except NotFound:
            anonymised[user_id] = "gone"
    receipt = {"tickets_deleted": deleted, "contacts_anonymised": anonymised,
               "note": "HappyFox documents no contact delete: the contact's name, email, phones and custom fields "
                       "were blanked instead",
               "counts": {"tickets": len(tickets), "contacts": len(users)},
               "remote_ids": {"happyfox": sorted(users), "happyfox_ticket": sorted(tickets)}}
    if held:
        receipt["kept"] = subject.hold.kept(happyfox_ticket=held, happyfox=kept_users)
    return receipt


def aircall_records(subject: Subject) -> tuple[dict[str, AircallContactRecord], dict[str, AircallCallRecord]]:
    """The person's Aircall contacts (our link, search by email and by phone) and their calls, found by each of
    their numbers and their contacts' numbers (`/v1/calls/search`, never the company's whole history); by id."""
    aircall = vendors.get().aircall
    contacts = {i: c for i, c in person_contacts(aircall, "aircall", subject).items() if c is not None}
    phones = set(subject.phones)
    for contact in contacts.values():
        phones |= {p for p in (identity.normalise_phone(n.value) for n in contact.phone_numbers) if p}
    calls: dict[str, AircallCallRecord] = {}
    for phone in sorted(phones):
        calls.update({c.id: c for c in aircall.search_calls(phone)})
    return contacts, calls


def erase_aircall(subject: Subject) -> dict[str, Any]:
    """Find the person's contacts and calls (`aircall_records`); delete each call's recording and voicemail, archive the
    call, then delete the contacts, last, since their numbers find the calls on a retry
    (docs/vendors/aircall.md#deletion). Aircall has no call delete: the archived call keeps the number and time, which
    the receipt lists for a request to Aircall."""
    aircall = vendors.get().aircall
    contacts, calls = aircall_records(subject)
    held = {call_id for call_id, call in calls.items() if subject.hold.covers(aircall_moment(call))}
    calls = {call_id: call for call_id, call in calls.items() if call_id not in held}
    recordings, voicemails, archived = {}, {}, {}
    for call_id, call in sorted(calls.items(), key=lambda item: int(item[0])):
        if call.recording:
            recordings[call_id] = aircall.delete_recording(call_id)
        if call.voicemail:
            voicemails[call_id] = aircall.delete_voicemail(call_id)
        # An earlier attempt's archive is not repeated; the media above goes first, as an archived call keeps it.
        archived[call_id] = "already_archived" if call.archived else aircall.archive_call(call_id)
    deleted = {contact_id: aircall.delete_contact(contact_id) for contact_id in sorted(contacts)}
    call_ids = sorted(calls)
    receipt = {"recordings_deleted": recordings, "voicemails_deleted": voicemails, "calls_archived": archived,
            "contacts_deleted": deleted,
            "counts": {"calls": len(calls), "recordings": len(recordings), "voicemails": len(voicemails),
                       "contacts": len(contacts)},
            "retained_by_vendor": {"call_log": call_ids,
                                   "note": "Aircall's API cannot delete a call: these calls are archived, and "
                                           "their number and time stay in Aircall's archived call history; ask "
                                           "Aircall to erase them"},
            "remote_ids": {"aircall": sorted(contacts), "aircall_call": call_ids}}
    if held:
        receipt["kept"] = subject.hold.kept(aircall_call=held)
    return receipt


def erase_gmail(subject: Subject) -> dict[str, Any]:
    """Permanently delete the support mailbox's messages from or to the person's addresses
    (docs/vendors/gmail.md#deleting-messages)."""
    gmail = vendors.get().gmail
    ids: list[str] = []
    for email in subject.emails:
        ids += [i for i in gmail.messages_about(email) if i not in ids]
    held = [i for i in ids if subject.hold.windows and subject.hold.covers(gmail_moment(gmail.get_message(i)))]
    ids = [i for i in ids if i not in held]
    if ids:
        gmail.delete_messages(ids)
    receipt: dict[str, Any] = {"messages_deleted": ids, "counts": {"messages": len(ids)}}
    if held:
        receipt["kept"] = subject.hold.kept(gmail_message=held)
    return receipt


# ---------------------------------------------------------------- Switchboard's own store

def erase_switchboard(s: Session, subject: Subject, erasure_id: int) -> dict[str, Any]:
    """In one transaction: identities removed, names blanked, tickets kept only as anonymous statistics (when
    `retention.keep_anonymous_tickets`), complaint identification cleared (the record stays 5 years, policy 004),
    inbox payloads and effect details that mention the person redacted. Then every table is scanned for the
    person's email and phone: any left makes the step fail, visibly, before anything is committed."""
    keep = settings.get().config.retention.keep_anonymous_tickets
    traces, ids, now = subject.traces(), subject.customer_ids, datetime.now(timezone.utc)
    source_keys = set()
    identities = s.scalars(select(Identity).where(Identity.customer_id.in_(ids))).all()
    for item in identities:
        s.delete(item)
    for customer in s.scalars(select(Customer).where(Customer.id.in_(ids))):
        customer.first_name = customer.last_name = None
        customer.erased_at = customer.erased_at or now
    complaint = getattr(models, "Complaint", None)
    complained: set[int] = set()
    held = set(subject.hold.ticket_ids)
    open_rows: set[tuple[str, Any]] = set()
    if complaint is not None:
        for row in s.scalars(select(complaint).where(complaint.customer_id.in_(ids))):
            complained.add(row.ticket_id)
            if row.status != "closed":  # an open complaint's answer needs its complainant; closure clears these
                open_rows.add(("complaints", row.id))
                continue
            row.customer_name = row.customer_email = row.customer_phone = None
            row.id_removed_at = row.id_removed_at or now
    tickets = s.scalars(select(Ticket).where(Ticket.customer_id.in_(ids))).all()
    for ticket in tickets:
        source_keys.add(ticket.source_key)
        if ticket.id in held:
            continue  # its vendor ids find it when the hold ends (flows/complaints/complaint_hold.py)
        if keep or ticket.id in complained:
            ticket.subject = ticket.survey_comment = ticket.survey_token = None
            # The vendors' objects are gone: a stale copy of one must look unknown (and meet its tombstone).
            ticket.happyfox_id = ticket.hubspot_ticket_id = None
        else:
            s.delete(ticket)
    inbox_ids = {int(k.split(":", 1)[1]) for k in source_keys if k.startswith("inbox:") and k[6:].isdigit()}
    matched = [row.id for row in s.execute(select(InboxEvent.id, InboxEvent.payload)).yield_per(500)
               if row.id in inbox_ids or traces.in_value(row.payload)]
    for start in range(0, len(matched), 500):
        s.execute(update(InboxEvent).where(InboxEvent.id.in_(matched[start:start + 500]))
                  .values(payload={"erased": erasure_id}))
    redacted = len(matched)
    effects = 0
    for effect in s.scalars(select(Effect).where(Effect.detail.is_not(None))):
        if traces.in_value(effect.detail):
            effect.detail = {"erased": erasure_id}
            effects += 1
    # The phone-only contact recorded per number is gone from HubSpot: a new caller from it must get a new one.
    s.execute(delete(Effect).where(Effect.key.in_([identity.phone_contact_key(p) for p in subject.phones])))
    s.flush()
    # The request that asked for this erasure keeps where to tell the person it is done (Art. 12(1)), until the
    # mail is sent (flows/privacy/requests.py clears it then); the person's other requests forget it now.
    for request in s.scalars(select(models.PrivacyRequest).where(models.PrivacyRequest.customer_id.in_(ids),
                                                                 models.PrivacyRequest.reply_to.is_not(None))):
        if request.erasure_id == erasure_id:
            open_rows.add(("privacy_requests", request.id))
        else:
            request.reply_to = None
    s.flush()
    residue = residue_in_store(s, traces, skip=open_rows)
    if residue:
        raise RuntimeError(f"personal data left in {', '.join(residue)}")  # table.column names only
    receipt = {"identities_removed": len(identities), "customers_anonymised": ids,
               "tickets": {"kept_anonymous" if keep else "deleted": len(tickets) - len(held)},
               "complaints_identification_removed": len(complained) - len(open_rows), "inbox_redacted": redacted,
               "effects_redacted": effects, "counts": {"identities": len(identities), "tickets": len(tickets)}}
    if held:
        receipt["kept"] = subject.hold.kept(ticket=held, open_complaint=[i for _, i in open_rows],
                                            happyfox_ticket=subject.hold.happyfox_tickets,
                                            hubspot_ticket=subject.hold.hubspot_tickets)
    return receipt


def residue_in_store(s: Session, traces: Traces, skip: AbstractSet[tuple[str, Any]] = frozenset()) -> list[str]:
    """`table.column` of every value in the database that still mentions the person (every table, by
    reflection, so a table added later is covered too); `skip`: (table, id) of rows a legal hold keeps."""
    from sqlalchemy import MetaData, Table
    found = []
    metadata = MetaData()
    for name in sa_inspect(s.connection()).get_table_names():
        table = Table(name, metadata, autoload_with=s.connection())
        for row in s.execute(select(table)).mappings():
            if (name, row.get("id")) in skip:
                continue
            for column, value in row.items():
                if traces.in_value(value) and f"{name}.{column}" not in found:
                    found.append(f"{name}.{column}")
    return found


PROCESSORS: dict[str, Callable[[Subject], dict[str, Any]]] = {
    "hubspot": erase_hubspot,
    "happyfox": erase_happyfox,
    "aircall": erase_aircall,
    "gmail": erase_gmail,
}
LAST = "switchboard"
ORDER = (*PROCESSORS, LAST)
