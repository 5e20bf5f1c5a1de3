"""What Switchboard does with every event it stores: for each (source, kind), the handlers in the order they run.

This table is the one place that decides it. The receiver accepts and ignores (counted on `/metrics`) a vendor
event that no route names, so a subscription nobody handles costs nothing and is visible. Every handler is
idempotent (an event may run twice) and reads its payload through `flows.payloads.read`.

Sources: `form` (the website form, signed webhook), `aircall`, `happyfox` (smart rule), `hubspot` (app
subscriptions), and three of our own: `privacy` (mail to the privacy address, read from Gmail by flows/privacy/requests.py), `manual` (`switchboard ticket create`, `POST /admin/tickets`) and `admin`
(`POST /admin/customers/consent-withdrawal`). docs/vendors.md says which events an admin subscribes to.
"""
from __future__ import annotations

from flows.closure import status_mirror
from flows.complaints import complaint_sync
from flows.intake import calls, enquiry, first_response
from flows.privacy import consent, rectification, requests, retention

from .inbox import Handler

ROUTES: dict[tuple[str, str], tuple[Handler, ...]] = {
    # A customer's report: a customer and a ticket in our store, HappyFox and HubSpot, and the confirmation mail;
    # the consent its checkbox gave (flows/privacy/consent.py); then, for a complaint category, its register entry
    # (which needs intake's ticket).
    ("form", "form"): (enquiry.on_form, consent.on_form, complaint_sync.on_intake),
    ("manual", "manual"): (enquiry.on_manual, complaint_sync.on_intake),
    # A HappyFox ticket created or changed. Intake first links a ticket HappyFox made from the support mailbox;
    # then closure mirrors its status (a closure sends the survey), first response stops its confirmation clock,
    # the complaint register reads its complaint fields, and a contact email corrected in HappyFox is carried over.
    ("happyfox", "ticket"): (enquiry.on_happyfox_ticket, status_mirror.on_happyfox_ticket,
                             first_response.on_happyfox_ticket, complaint_sync.on_happyfox_ticket,
                             rectification.on_happyfox_ticket),
    # A call: logged on HubSpot and on the caller's open ticket (a missed one opens a ticket when there is none); a
    # call back counts as the first response.
    ("aircall", "call.ended"): (calls.on_call_ended, first_response.on_call_ended),
    ("aircall", "call.voicemail_left"): (calls.on_voicemail_left,),
    # A tag or an agent's comment on a call (any time after it): a private note on the call's ticket.
    ("aircall", "call.tagged"): (calls.on_call_annotated,),
    ("aircall", "call.commented"): (calls.on_call_annotated,),
    # A HubSpot ticket's stage changed by staff there: mirrored to HappyFox; complaint fields to the register.
    ("hubspot", "ticket.propertyChange"): (status_mirror.on_hubspot_ticket_change, complaint_sync.on_hubspot_property),
    # A contact's contract end or consent withdrawal set in HubSpot: the retention clock, or erasure; an email or
    # phone corrected there: our identities and HappyFox follow. A merge there merges our customers; HubSpot's GDPR
    # delete erases the person everywhere.
    ("hubspot", "contact.propertyChange"): (retention.on_contact_property, rectification.on_hubspot_contact_change),
    ("hubspot", "contact.merge"): (rectification.on_hubspot_contact_merge,),
    ("hubspot", "contact.privacyDeletion"): (rectification.on_hubspot_privacy_deletion,),
    ("admin", "consent.withdrawn"): (retention.on_admin_withdrawal,),
    # A mail to the privacy address (read by our poll): a data-subject request awaiting verification, acknowledged.
    ("privacy", "mail"): (requests.on_privacy_mail,),
}


def handlers_for(source: str, kind: str) -> tuple[Handler, ...]:
    return ROUTES.get((source, kind), ())


def is_routed(source: str, kind: str) -> bool:
    return (source, kind) in ROUTES
