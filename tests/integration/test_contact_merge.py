"""HubSpot follows our customer merges, over the sandbox: when two customers with a HubSpot contact each prove to be
one person, a job queued after our merge merges the newer contact into the older one in HubSpot, once; a vendor
outage retries it without touching our merge; a contact merged already or gone counts as done."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from core import jobs, store
from core.models import Audit, utcnow
from flows import contact_merge, identity, vendors
from flows.identity import Person
from flows.privacy import erasure

from .delivery import deliver
from .flowkit import audit_rows, customers, fixture, identities, objects, put_form, run

EMAIL, PHONE = "kata@example.com", "+36209998877"
MERGE = "/crm/v3/objects/contacts/merge"


@pytest.fixture
def queued(settings: Any) -> Iterator[Callable[[], list[tuple[Any, ...]]]]:
    """The merge jobs waiting in the real queue (emptied first), as their arguments: the test runs them."""
    jobs.huey.flush()

    def waiting() -> list[tuple[Any, ...]]:
        return [tuple(task.args) for task in jobs.huey.pending() if task.name == "merge_hubspot_contacts"]
    yield waiting
    jobs.huey.flush()


@pytest.fixture
def immediate_jobs():
    """huey's own immediate mode: a queued job runs at once, in the caller's thread."""
    jobs.huey.immediate = True
    yield jobs.huey
    jobs.huey.immediate = False


def call_from(call_id: int, number: str = PHONE) -> int:
    payload = fixture("webhooks/aircall/fixtures/call.ended__answered_inbound.json")
    payload.pop("token", None)
    payload["data"].update(id=call_id, contact=None, raw_digits=number)
    return deliver("aircall", payload, run=False).inbox_id


def two_customers_with_contacts(sandbox) -> tuple[int, str, str]:
    """A caller known by phone (our older customer) and a form sender known by email, each with a HubSpot
    contact, the form sender's made first: (the caller's id, the older contact, the newer one)."""
    with store.session() as s:
        caller = identity.resolve(s, Person(phone=PHONE), "test").id
    assert run(put_form(EMAIL)) == "done"
    [older] = [c["id"] for c in objects(sandbox, "hubspot", "contacts")]
    assert run(call_from(2001)) == "done"  # a phone-only contact for the caller
    [newer] = [c["id"] for c in objects(sandbox, "hubspot", "contacts") if c["id"] != older]
    assert identities(caller)["hubspot"] == [newer]
    return caller, older, newer


def prove_one_person() -> None:
    """A form carrying both the email and the phone: our two customers are one."""
    assert run(put_form(EMAIL, phone=PHONE)) == "done"


def merges(sandbox) -> list[dict[str, Any]]:
    return [c for c in sandbox.calls("hubspot") if c["method"] == "POST" and c["path"] == MERGE]


def merge_audits() -> list[Audit]:
    return [a for a in audit_rows() if a.action == "hubspot.contacts_merged"]


def test_the_newer_contact_is_merged_into_the_older_once_and_both_ids_stay(flow, immediate_jobs):
    caller, older, newer = two_customers_with_contacts(flow)
    prove_one_person()  # the job runs as soon as our merge has committed

    [live] = customers()
    assert live.id == caller
    assert identities(caller)["hubspot"] == [older, newer]  # the survivor first; the old id still known
    assert [c["id"] for c in objects(flow, "hubspot", "contacts")] == [older]
    assert len(merges(flow)) == 1
    [ours] = [a for a in audit_rows() if a.action == "customer.merged"]
    assert ours.detail["hubspot_contacts"] == [newer, older]
    [theirs] = merge_audits()
    assert theirs.customer_id == caller and theirs.detail == {
        "contacts": sorted([older, newer], key=int), "survivor": older, "outcome": "merged", "primary": older,
        "merged": newer}
    assert not any(EMAIL in str(a.detail) or PHONE[3:] in str(a.detail) for a in (ours, theirs))

    # The next call is logged on the contact that survived; a webhook naming the old id finds the customer.
    assert run(call_from(2002)) == "done"
    call = max(objects(flow, "hubspot", "calls"), key=lambda c: int(c["id"]))
    links = {a["to"][1] for a in flow.state("hubspot")["associations"]
             if a["from"] == ["calls", call["id"]] and a["to"][0] == "contacts"}  # (also the open ticket's mirror)
    assert links == {older}
    with store.session() as s:
        assert [c.id for c in identity.find(s, hubspot=newer)] == [caller]

    flow.clear_calls()  # the job again (a second delivery): nothing
    assert contact_merge.merge_hubspot_contacts.call_local(caller, newer, older) == "merged"
    assert flow.calls() == [] and len(merge_audits()) == 1


@pytest.mark.parametrize("fault, posts", [({"status": 503}, 2), ({"delay": 2.3}, 1)],
                         ids=["outage", "answer lost"])
def test_an_outage_fails_the_job_not_our_merge_and_the_retry_merges_once(flow, queued, fault, posts):
    caller, older, newer = two_customers_with_contacts(flow)
    flow.fault(service="hubspot", method="POST", path=MERGE, times=1, **fault)
    prove_one_person()  # our merge does not wait for HubSpot
    assert len(customers()) == 1 and queued() == [(caller, newer, older)]

    with pytest.raises(Exception) as caught:
        contact_merge.merge_hubspot_contacts.call_local(*queued()[0])
    assert type(caught.value).__name__ == "Unavailable"  # transient: huey retries the job
    assert len(customers()) == 1 and set(identities(caller)["hubspot"]) == {older, newer}
    assert merge_audits() == []
    flow.wait_idle()  # a slow merge lands
    assert contact_merge.merge_hubspot_contacts.call_local(*queued()[0]) in ("merged", "one left")

    assert [c["id"] for c in objects(flow, "hubspot", "contacts")] == [older]
    assert len(merges(flow)) == posts
    assert identities(caller)["hubspot"] == [older, newer]
    assert len(merge_audits()) == 1


def test_a_contact_gone_before_the_job_counts_as_done_and_the_live_one_comes_first(flow, queued):
    caller, older, newer = two_customers_with_contacts(flow)
    prove_one_person()
    assert identities(caller)["hubspot"] == [older, newer]
    vendors.get().hubspot.archive_contact(older)  # deleted in HubSpot meanwhile
    assert contact_merge.merge_hubspot_contacts.call_local(*queued()[0]) == "one left"
    assert merges(flow) == []
    assert identities(caller)["hubspot"] == [newer, older]  # flows now write to the live one
    assert run(call_from(2002)) == "done"


def test_a_404_from_the_merge_counts_as_done(flow, queued):
    _, _, _ = two_customers_with_contacts(flow)
    prove_one_person()
    flow.fault(service="hubspot", method="POST", path=MERGE, status=404, times=1)
    assert contact_merge.merge_hubspot_contacts.call_local(*queued()[0]) == "gone"
    flow.clear_calls()
    assert contact_merge.merge_hubspot_contacts.call_local(*queued()[0]) == "gone"
    assert flow.calls() == []
    [entry] = merge_audits()
    assert entry.detail["outcome"] == "gone" and entry.detail["survivor"] is None


def test_a_merge_hubspot_refuses_is_audited_and_not_tried_again(flow, queued):
    _, older, newer = two_customers_with_contacts(flow)
    prove_one_person()
    flow.fault(service="hubspot", method="POST", path=MERGE, status=400, times=1)
    assert contact_merge.merge_hubspot_contacts.call_local(*queued()[0]) == "refused"
    [entry] = merge_audits()
    assert entry.detail["status"] == 400
    age_merges(timedelta(minutes=20))
    assert contact_merge.sweep_hubspot_merges.call_local() == 0
    assert len(objects(flow, "hubspot", "contacts")) == 2


def test_no_merge_is_written_for_a_person_being_erased(flow, queued):
    caller, _, _ = two_customers_with_contacts(flow)
    prove_one_person()
    erasure.request(customer_id=caller)
    flow.clear_calls()
    assert contact_merge.merge_hubspot_contacts.call_local(*queued()[0]) == "erased"
    assert flow.calls() == []


def test_a_merge_that_rolls_back_or_finds_one_contact_queues_nothing(flow, queued):
    two_customers_with_contacts(flow)
    with pytest.raises(RuntimeError):
        with store.session() as s:
            identity.resolve(s, Person(email=EMAIL, phone=PHONE), "test")
            raise RuntimeError("the job died before committing")
    assert queued() == [] and len(customers()) == 2
    with store.session() as s:  # neither has a HubSpot contact: nothing for HubSpot to follow
        identity.resolve(s, Person(email="a@example.com", phone="+36301111111"), "test")
        identity.resolve(s, Person(email="b@example.com"), "test")
        identity.resolve(s, Person(email="b@example.com", phone="+36301111111"), "test")
    assert queued() == []


def age_merges(by: timedelta) -> None:
    with store.session() as s:
        s.execute(update(Audit).where(Audit.action == "customer.merged").values(at=utcnow() - by))


def test_the_sweep_queues_a_merge_whose_job_was_lost(flow, queued):
    caller, older, newer = two_customers_with_contacts(flow)
    prove_one_person()
    jobs.huey.flush()  # the queue lost it
    assert contact_merge.sweep_hubspot_merges.call_local() == 0  # too fresh: its job may still be retrying
    age_merges(timedelta(minutes=20))
    assert contact_merge.sweep_hubspot_merges.call_local() == 1 and queued() == [(caller, newer, older)]
    assert contact_merge.merge_hubspot_contacts.call_local(*queued()[0]) == "merged"
    assert contact_merge.sweep_hubspot_merges.call_local() == 0
    with store.session() as s:
        assert s.scalar(select(Audit.id).where(Audit.action == "hubspot.contacts_merged")) is not None
