"""Rectification from HubSpot over the sandbox: an email or phone corrected there becomes the customer's first
identity and reaches HappyFox's contact; a merge there merges our customers (audited); HubSpot's GDPR delete opens
our erasure of the person everywhere."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from core import store
from core.models import Audit, Erasure, Ticket
from flows import identity
from flows.privacy import erasure

from .delivery import deliver, fixture
from .flowkit import customers, fast_vendors, put_form, run, writes

EMAIL = "regi.cim@example.com"
NEW_EMAIL = "uj.cim@example.com"
NEW_PHONE = "+36209876543"
_events = iter(range(5000, 10**6))
SHAPES = {"contact.propertyChange": "email", "contact.merge": "two", "contact.privacyDeletion": "gdpr"}


def person(email: str) -> tuple[int, str, list[str]]:
    """(customer id, HubSpot contact id, HappyFox user ids) of the form sender."""
    assert run(put_form(email)) == "done"
    with store.session() as s:
        [customer] = identity.find(s, email=email)
        return (customer.id, identity.value_of(s, customer.id, "hubspot") or "",
                identity.values_of(s, customer.id, "happyfox"))


def contact_event(kind: str, object_id: str, **fields: Any) -> str:
    body = {**fixture("hubspot", f"{kind}__{SHAPES[kind]}")[0],
            "eventId": next(_events), "objectId": int(object_id), "occurredAt": int(time.time() * 1000), **fields}
    return deliver("hubspot", [body]).outcome


def happyfox_user(sandbox: Any, user_id: str) -> dict[str, Any]:
    return sandbox.state("happyfox")["users"][str(user_id)]


def test_an_email_and_a_phone_corrected_in_hubspot_reach_our_identities_and_happyfox(flow):
    customer_id, contact, users = person(EMAIL)
    assert contact and users
    assert contact_event("contact.propertyChange", contact, propertyName="email", propertyValue=NEW_EMAIL) == "done"
    with store.session() as s:
        assert identity.value_of(s, customer_id, "email") == NEW_EMAIL
        assert EMAIL in identity.values_of(s, customer_id, "email")  # still finds the old mail for an erasure
        rectified = s.scalars(select(Audit).where(Audit.action == "customer.rectified")).all()
    assert all(happyfox_user(flow, u)["email"] == NEW_EMAIL for u in users)
    assert [a.detail["system"] for a in rectified] == ["email"] and "@" not in json.dumps([a.detail for a in rectified])

    # Our own value echoed back, and a blanked property: nothing written anywhere.
    flow.clear_calls()
    assert contact_event("contact.propertyChange", contact, propertyName="email", propertyValue=NEW_EMAIL) == "done"
    assert contact_event("contact.propertyChange", contact, propertyName="phone", propertyValue="") == "done"
    assert [w for w in writes(flow) if w[1] != "GET"] == []  # HappyFox read, not written

    assert contact_event("contact.propertyChange", contact, propertyName="mobilephone",
                         propertyValue="06 20 987 6543") == "done"
    with store.session() as s:
        assert identity.value_of(s, customer_id, "phone") == NEW_PHONE
    assert all(any(p["number"] == NEW_PHONE for p in happyfox_user(flow, u)["phones"]) for u in users)
    # Somebody HubSpot has and we do not: nothing happens.
    assert contact_event("contact.propertyChange", "999999", propertyName="email", propertyValue="x@example.com") == "done"


def test_a_happyfox_outage_retries_the_rectification(flow):
    customer_id, contact, users = person(EMAIL)
    flow.fault(service="happyfox", method="POST", path=f"/api/1.1/json/user/{users[0]}/", status=503, times=50)
    with pytest.raises(Exception, match="happyfox"):
        contact_event("contact.propertyChange", contact, propertyName="email", propertyValue=NEW_EMAIL)
    flow.http.delete("/_sandbox/faults").raise_for_status()
    with store.session() as s:
        from core.models import InboxEvent
        failed = s.scalars(select(InboxEvent.id).where(InboxEvent.status.in_(("failed", "dead")))).all()
    from flows import inbox
    inbox.replay(list(failed))
    assert [run(i) for i in failed] == ["done"]
    assert happyfox_user(flow, users[0])["email"] == NEW_EMAIL


def test_a_merge_in_hubspot_merges_our_customers(flow):
    first, first_contact, _ = person(EMAIL)
    second, second_contact, _ = person(NEW_EMAIL)
    assert contact_event("contact.merge", first_contact, primaryObjectId=int(first_contact),
                         mergedObjectIds=[int(second_contact)], newObjectId=int(first_contact)) == "done"
    live = customers()
    assert [c.id for c in live] == [first]
    with store.session() as s:
        assert identity.value_of(s, first, "hubspot") == first_contact
        assert set(identity.values_of(s, first, "email")) == {EMAIL, NEW_EMAIL}
        [merged] = s.scalars(select(Audit).where(Audit.action == "customer.merged")).all()
    assert merged.actor == "hubspot" and merged.detail["reason"] == "HubSpot contact merge"
    assert merged.detail["merged_id"] == second


def test_hubspots_gdpr_delete_erases_the_person_everywhere(flow):
    customer_id, contact, _ = person(EMAIL)
    assert contact_event("contact.privacyDeletion", "424242") == "done"  # not ours: nothing
    with store.session() as s:
        assert s.scalars(select(Erasure)).all() == []
    assert contact_event("contact.privacyDeletion", contact) == "done"
    with store.session() as s:
        [opened] = s.scalars(select(Erasure)).all()
        opened_id, reason = opened.id, opened.reason
    assert reason == "hubspot_gdpr_delete"
    assert erasure.run(opened_id) == "done"
    with store.session() as s:
        assert identity.find(s, email=EMAIL) == []


def test_our_own_gdpr_delete_echoed_by_hubspot_starts_nothing_beside_the_erasure_under_way(flow, monkeypatch):
    """Our erasure deletes the HubSpot contact, and HubSpot announces contact.privacyDeletion: the erasure under way
    has it in hand, so the echo neither opens another nor runs the same steps in a worker beside it."""
    customer_id, contact, _ = person(EMAIL)
    under_way = erasure.request(customer_id=customer_id, reason="request", actor="cli")
    started: list[int] = []
    monkeypatch.setattr(erasure, "start", started.append)
    assert contact_event("contact.privacyDeletion", contact) == "done"
    assert started == []
    with store.session() as s:
        assert [e.id for e in s.scalars(select(Erasure))] == [under_way]


def test_an_email_corrected_on_the_happyfox_contact_reaches_our_identities_and_hubspot(flow):
    customer_id, contact, users = person(EMAIL)
    ticket = fast_vendors().happyfox.update_user(users[0], email=NEW_EMAIL)
    assert ticket.email == NEW_EMAIL
    with store.session() as s:
        from core.models import Ticket
        happyfox_id = s.scalar(select(Ticket.happyfox_id).where(Ticket.customer_id == customer_id))
    changed = fast_vendors().happyfox.get_ticket(happyfox_id).raw
    assert deliver("happyfox", changed).outcome == "done"
    with store.session() as s:
        assert identity.value_of(s, customer_id, "email") == NEW_EMAIL
        [rectified] = s.scalars(select(Audit).where(Audit.action == "customer.rectified")).all()
    assert (rectified.actor, rectified.detail["source"]) == ("happyfox", "happyfox")
    assert flow.state("hubspot")["contacts"][contact]["properties"]["email"] == NEW_EMAIL
    # The next event of the ticket shows what we have: nothing read, nothing written.
    flow.clear_calls()
    assert run(put_happyfox(changed)) == "done"
    assert not [c for c in writes(flow) if c[2].startswith("/api/1.1/json/user/") or c[0] == "hubspot"]


def test_a_phone_corrected_on_the_happyfox_contact_reaches_our_identities_and_hubspot(flow):
    """A new primary number on the HappyFox contact goes first among the customer's phones and to the HubSpot
    contact; a number the customer already has (they called from it) is no correction and costs nothing."""
    customer_id, contact, users = person(EMAIL)
    happyfox = fast_vendors().happyfox
    with store.session() as s:
        happyfox_id = s.scalar(select(Ticket.happyfox_id).where(Ticket.customer_id == customer_id))
        identity.add_identity(s, identity.current(s, customer_id), "phone", "+36301112222", "aircall")
    happyfox.update_user(users[0], phones=[{"type": "m", "number": "06 30 111 2222", "is_primary": True}])
    flow.clear_calls()
    assert deliver("happyfox", happyfox.get_ticket(happyfox_id).raw).outcome == "done"
    assert not [c for c in writes(flow) if c[0] == "hubspot"]  # a known number: nothing written
    happyfox.update_user(users[0], phones=[{"type": "m", "number": "06 20 987 6543", "is_primary": True}])
    happyfox.update_ticket(happyfox_id, 1, private_note="Új telefonszámot adott meg.")  # the ticket's next event
    assert deliver("happyfox", happyfox.get_ticket(happyfox_id).raw).outcome == "done"
    with store.session() as s:
        assert identity.values_of(s, customer_id, "phone") == [NEW_PHONE, "+36301112222"]
        [rectified] = s.scalars(select(Audit).where(Audit.action == "customer.rectified")).all()
    assert rectified.detail["system"] == "phone" and NEW_PHONE not in json.dumps(rectified.detail)
    assert flow.state("hubspot")["contacts"][contact]["properties"]["phone"] == NEW_PHONE


def put_happyfox(ticket: dict) -> int:
    from .flowkit import put
    return put("happyfox", "ticket", {"ticket_id": ticket["id"], "ticket": ticket}, f"again-{next(_events)}")
