"""HubSpot follows our customer merges: when two customers who each had a HubSpot contact prove to be one person
(`identity.merge`), the newer contact is merged into the older one in HubSpot, once, by a job queued after our
merge commits. A vendor outage retries the job; it never undoes or fails our own merge.

Both ids stay identities of the customer, since webhooks still name the old one; the contact that survived is made
the customer's first HubSpot identity, the one flows write to. HubSpot documents that a merged contact may get a new
id, both old ids then reading as it (developers.hubspot.com/changelog/updated-merge-functionality-for-contacts-and-
companies): the survivor is the id the merge answers with, and two ids that read as one contact are merged already.
A 404 (a contact merged already, or deleted) counts as done. Audit rows carry HubSpot ids and outcomes only.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connectors.errors import Conflict, InvalidRequest, NotFound
from connectors.records import HubSpotObject
from core import audit, jobs, store
from core.models import Audit, Erasure, utcnow

from . import effects, identity, vendors
from .inbox import is_permanent, reason

log = logging.getLogger(__name__)
ACTOR = "contact-merge"
SWEEP_AFTER = timedelta(minutes=15)   # past the job's own retries (about 8.5 minutes)
SWEEP_WITHIN = timedelta(days=7)


def _ordered(*contact_ids: str) -> list[str]:
    return sorted({str(i) for i in contact_ids}, key=lambda i: (len(i), i))  # numeric order of numeric ids


def key_of(first: str, second: str) -> str:
    """One key per pair, whichever customer's contact it came from: which one is older is HubSpot's to say."""
    low, high = _ordered(first, second)
    return f"hubspot-merge:{low}:{high}"


# ---------------------------------------------------------------- the merge

def _live(pair: list[str]) -> list[HubSpotObject]:
    """The pair's contacts that HubSpot still answers, each once, oldest first."""
    hubspot, found = vendors.get().hubspot, dict[str, HubSpotObject]()
    for contact_id in pair:
        try:
            contact = hubspot.get_contact(contact_id, properties=["createdate"])
        except NotFound:
            continue
        found[contact.id] = contact
    return sorted(found.values(), key=lambda c: (c.created_at or "", len(c.id), c.id))


def _settled(live: list[HubSpotObject]) -> effects.Remote | None:
    """The outcome when HubSpot holds the pair as one contact already (or none), else None."""
    if len(live) > 1:
        return None
    return (live[0].id, {"outcome": "one left"}) if live else ("", {"outcome": "gone"})


def _erasing(customer_id: int) -> bool:
    with store.session() as s:
        customer = identity.current(s, customer_id)
        return customer.erased_at is not None or s.scalar(
            select(Erasure.id).where(Erasure.customer_id == customer.id).limit(1)) is not None


def _merge(customer_id: int, pair: list[str]) -> effects.Remote:
    if _erasing(customer_id):  # no write on behalf of a person being erased
        return "", {"outcome": "erased"}
    live = _live(pair)
    settled = _settled(live)
    if settled is not None:
        return settled
    older, newer = live[0].id, live[1].id
    try:
        merged = vendors.get().hubspot.merge_contacts(older, newer)
    except (InvalidRequest, Conflict) as exc:  # HubSpot will not merge these two: staff can, by hand
        return "", {"outcome": "refused", "status": exc.status}
    if merged is None:  # one went between our read and the merge
        return "", {"outcome": "gone"}
    return merged.id, {"outcome": "merged", "primary": older, "merged": newer}


def merge_in_hubspot(customer_id: int, first: str, second: str) -> str:
    """Merge the pair in HubSpot once; the outcome ("merged", "one left", "gone", "refused", "erased")."""
    pair, key = _ordered(first, second), key_of(first, second)
    if len(pair) < 2:
        return "one left"
    done_before = effects.recorded(key) is not None
    survivor, detail = effects.once_detail(key, lambda: _merge(customer_id, pair),
                                           find=lambda: _settled(_live(pair)))
    with store.session() as s:
        customer = identity.current(s, customer_id)
        if survivor:
            identity.put_first(s, customer.id, "hubspot", survivor, ACTOR)
        if not done_before:
            audit.record(s, ACTOR, "hubspot.contacts_merged", customer_id=customer.id, contacts=pair,
                         survivor=survivor or None, **detail)
    return str(detail.get("outcome"))


@jobs.job(context=True)
def merge_hubspot_contacts(customer_id: int, first: str, second: str, task: Any = None) -> str:
    try:
        return merge_in_hubspot(int(customer_id), str(first), str(second))
    except Exception as exc:
        if is_permanent(exc) or (task is not None and task.retries == 0):
            log.error("HubSpot merge for customer %s failed: %s; the sweep queues it again", customer_id,
                      reason(exc))
            return "failed"
        raise  # huey retries with back-off


@jobs.periodic(jobs.crontab(minute="*/15"))
def sweep_hubspot_merges() -> int:
    """Queue again the HubSpot merges of the last week whose job was lost or gave up."""
    now = utcnow()
    with store.session() as s:
        rows = s.execute(select(Audit.customer_id, Audit.detail).where(
            Audit.action == "customer.merged", Audit.at >= now - SWEEP_WITHIN, Audit.at < now - SWEEP_AFTER)).all()
        pending = []
        for customer_id, detail in rows:
            contacts = (detail or {}).get("hubspot_contacts")
            if contacts and customer_id is not None:
                effect = store.find_effect(s, key_of(*contacts))
                if effect is None or effect.remote_id is None:
                    pending.append((customer_id, *contacts))
    for customer_id, first, second in pending:
        merge_hubspot_contacts(customer_id, first, second)
    return len(pending)
