"""Identity on the store (SQLite and PostgreSQL): normalising emails and phones, finding a customer by any
identity, merging two customers that prove to be one person (the older id kept, the merge audited), and the
HubSpot contact found or made for a report over the sandbox."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core import store
from core.models import Audit, Customer, Ticket
from flows import identity
from flows.identity import Person

from .flowkit import customers, fast_vendors, identities, objects




@pytest.mark.parametrize("raw, expected", [
    ("06 30 123 4567", "+36301234567"), ("+36 (30) 123-4567", "+36301234567"), ("0036301234567", "+36301234567"),
    ("1 234 5678", "+3612345678"), ("+44 20 7946 0958", "+442079460958"), ("anonymous", None), ("", None),
    (None, None), ("12", None)])
def test_phones_become_e164_read_as_hungarian(raw, expected):
    assert identity.normalise_phone(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    (" Kata.Kovacs@Example.COM ", "kata.kovacs@example.com"), ("no-at-sign", None), ("a@b", None), (None, None),
    ("a,victim1@example.com", None), ("grp:victim2@example.com;", None), ("Kata <kata@example.com>", None),
    ("kata@example.com\r\nBcc: x@example.com", None)])
def test_emails_are_trimmed_and_lower_cased(raw, expected):
    assert identity.normalise_email(raw) == expected


def test_a_customer_is_found_by_any_identity_in_any_spelling(db):
    with store.session() as s:
        made = identity.resolve(s, Person(email="Kata@Example.com", phone="06301234567", first_name="Kata"), "t")
        made_id = made.id
    with store.session() as s:
        assert [c.id for c in identity.find(s, email="kata@example.com")] == [made_id]
        assert [c.id for c in identity.find(s, phone="+36 30 123 4567")] == [made_id]
        assert identity.find(s, email="other@example.com") == []
        again = identity.resolve(s, Person(phone="+36-30-123-4567", last_name="Kovács"), "t")
        assert again.id == made_id and again.last_name == "Kovács" and again.first_name == "Kata"
    assert len(customers()) == 1
    assert identities(made_id) == {"email": ["kata@example.com"], "phone": ["+36301234567"]}


def test_two_known_customers_proven_one_person_merge_into_the_older(db):
    with store.session() as s:
        by_phone = identity.resolve(s, Person(phone="+36301234567"), "calls")
        by_phone.created_at = datetime.now(timezone.utc) - timedelta(days=3)
        by_phone.last_activity_at = datetime.now(timezone.utc) - timedelta(days=3)
        older = by_phone.id
    with store.session() as s:
        by_email = identity.resolve(s, Person(email="kata@example.com", first_name="Kata"), "intake")
        newer = by_email.id
        identity.link(s, newer, "hubspot", "501", "intake")
        s.add(Ticket(source_key="inbox:1", customer_id=newer, channel="form"))
    with store.session() as s:
        merged = identity.resolve(s, Person(email="kata@example.com", phone="06 30 123 4567"), "intake")
        assert merged.id == older and merged.first_name == "Kata"
    [live] = customers()
    assert live.id == older
    assert identities(older) == {"phone": ["+36301234567"], "email": ["kata@example.com"], "hubspot": ["501"]}
    with store.session() as s:
        assert s.get(Customer, newer).merged_into_id == older
        assert s.scalar(select(Ticket.customer_id)) == older
        [merge] = s.scalars(select(Audit).where(Audit.action == "customer.merged")).all()
        assert merge.customer_id == older and merge.detail["merged_id"] == newer
        assert "kata" not in str(merge.detail)
        # A lookup by the merged customer's old identity lands on the survivor.
        assert [c.id for c in identity.find(s, hubspot="501")] == [older]


def test_linking_a_vendor_id_known_for_someone_else_merges_them(db):
    with store.session() as s:
        first = identity.resolve(s, Person(email="a@example.com"), "t").id
        second = identity.resolve(s, Person(email="b@example.com"), "t").id
        identity.link(s, first, "happyfox", 77, "t")
        survivor = identity.link(s, second, "happyfox", "77", "t")
        assert survivor.id == first
    assert [c.id for c in customers()] == [first]
    assert identities(first)["email"] == ["a@example.com", "b@example.com"]


def test_merging_twice_is_harmless_and_a_chain_resolves_to_the_survivor(db):
    with store.session() as s:
        a = identity.resolve(s, Person(email="a@example.com"), "t")
        b = identity.resolve(s, Person(email="b@example.com"), "t")
        c = identity.resolve(s, Person(email="c@example.com"), "t")
        identity.merge(s, a, b, "t", "test")
        identity.merge(s, b if b.merged_into_id is None else a, c, "t", "test")
        assert identity.merge(s, a, a, "t", "test").id == a.id
        assert {x.id for x in identity.find(s, email="c@example.com")} == {a.id}
    assert len(customers()) == 1


def test_put_first_makes_the_surviving_id_first_and_keeps_the_others(db):
    with store.session() as s:
        customer_id = identity.resolve(s, Person(email="a@example.com"), "t").id
        identity.link(s, customer_id, "hubspot", "501", "t")
        identity.link(s, customer_id, "hubspot", "502", "t")
    with store.session() as s:  # a merge HubSpot answered with a new id
        identity.put_first(s, customer_id, "hubspot", "777", "t")
    assert identities(customer_id)["hubspot"] == ["777", "501", "502"]
    with store.session() as s:
        identity.put_first(s, customer_id, "hubspot", "502", "t")
        assert identity.value_of(s, customer_id, "hubspot") == "502"
    assert identities(customer_id) == {"email": ["a@example.com"], "hubspot": ["502", "777", "501"]}


def test_the_hubspot_contact_is_upserted_by_email_or_found_by_phone(settings, sandbox):
    fast_vendors()
    with store.session() as s:
        by_email = identity.resolve(s, Person(email="kata@example.com", first_name="Kata"), "t").id
        by_phone = identity.resolve(s, Person(phone="+36301234567"), "t").id
    contact = identity.hubspot_contact(by_email, Person(email="kata@example.com", first_name="Kata"), "k1", "t")
    assert identity.hubspot_contact(by_email, Person(email="KATA@example.com"), "k2", "t") == contact
    [made] = objects(sandbox, "hubspot", "contacts")
    assert made["id"] == contact and made["properties"]["firstname"] == "Kata"

    # A caller with no email: searched by phone, and created with the phone when nobody has it.
    caller = identity.hubspot_contact(by_phone, Person(phone="+36301234567"), "k3", "t")
    assert caller != contact
    assert {c["properties"].get("phone") for c in objects(sandbox, "hubspot", "contacts")} >= {"+36301234567"}
    sandbox.clear_calls()
    assert identity.hubspot_contact(by_phone, Person(phone="+36301234567"), "k4", "t") == caller
    assert sandbox.calls() == []  # known from the store: no call
    assert identities(by_phone)["hubspot"] == [caller]


def test_a_caller_already_in_hubspot_is_found_by_phone_not_duplicated(settings, sandbox):
    v = fast_vendors()
    existing = v.hubspot.create_contact({"firstname": "Régi", "phone": "+36301234567"}).id
    with store.session() as s:
        caller = identity.resolve(s, Person(phone="06 30 123 4567"), "t").id
    assert identity.hubspot_contact(caller, Person(phone="+36301234567"), "k", "t") == existing
    assert len(objects(sandbox, "hubspot", "contacts")) == 1
