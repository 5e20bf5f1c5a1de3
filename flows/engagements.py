"""Other contacts on the ticket (policy 001: every contact with the reporter about a report is recorded with it): a
mail Switchboard sent about a ticket (the confirmation, the survey) becomes a HubSpot email engagement associated to
the customer's contact and to the ticket's mirror, as a call about the ticket does (flows/intake/calls.py).

Once per mail, keyed by the mail's own effect key (`hubspot-email:<mail key>`, stamped in the email's key property
so a retry after a crash finds it). It is written only once the mail is sent or may be (`effects.sent`), so an
outage of HubSpot delays the record and never the mail, and a retry records it without sending again. The record
holds the template and the ticket's display id, not the address or the text (the mail itself is not kept).
"""
from __future__ import annotations

from datetime import datetime, timezone

from core import audit, settings, store
from core.models import Ticket

from . import effects, identity, vendors

ACTOR = "engagements"
SUBJECTS = {"confirmation": {"hu": "Visszaigazolás", "en": "Confirmation"},
            "survey": {"hu": "Elégedettségi kérdőív", "en": "Satisfaction survey"}}


def mail_sent(mail_key: str, ticket_id: int, what: str, template: str, language: str) -> str | None:
    """Record the sent mail `mail_key` on the ticket's contact and mirror; the HubSpot email id, or None when there
    is nothing to record it on (no mirror and no contact) or the mail was not sent."""
    if not effects.sent(mail_key):
        return None
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        if ticket is None:
            return None
        contact_id = identity.value_of(s, ticket.customer_id, "hubspot") if ticket.customer_id else None
        mirror, display_id = ticket.hubspot_ticket_id, ticket.told_id or ticket.happyfox_display_id
        customer_id = ticket.customer_id
    if contact_id is None and mirror is None:
        return None
    hubspot = vendors.get().hubspot
    prop = settings.get().config.intake.hubspot_key_property
    key = f"hubspot-email:{mail_key}"
    title = SUBJECTS.get(what, {}).get(language) or what
    properties = {"hs_timestamp": str(int(datetime.now(timezone.utc).timestamp() * 1000)),
                  "hs_email_direction": "EMAIL", "hs_email_status": "SENT",
                  "hs_email_subject": f"{title} {display_id}" if display_id else title,
                  "hs_email_text": f"Switchboard: {template} ({language})", prop: key}

    def find() -> str | None:
        found = hubspot.find_email(prop, key)
        return found.id if found else None

    logged_before = effects.recorded(key) is not None
    email_id = effects.once(key, lambda: hubspot.create_email(properties, contact_id, ticket_id=mirror).id,
                            find=find)
    if not logged_before:
        with store.session() as s:
            audit.record(s, ACTOR, "mail.recorded", customer_id=customer_id, ticket_id=ticket_id,
                         hubspot_email_id=email_id, what=what)
    return email_id
