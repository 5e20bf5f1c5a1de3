"""Restriction (GDPR Art. 18) and objection (Art. 21) over the sandbox: a restricted person's data is kept, but no
flow writes to it or mails them (the survey included) until the restriction is lifted, when what was held runs;
the state is in the access export; somebody else is untouched."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core import store
from core.models import Audit, Customer, InboxEvent, Ticket
from flows.closure import survey
from flows.privacy import access, requests

from .delivery import deliver
from .flowkit import fast_vendors, put_form, run

EMAIL = "korlatozott@example.com"
OTHER = "masvalaki@example.com"
CLOSED = 7


def ticket_of(email: str) -> Ticket:
    with store.session() as s:
        found = s.scalars(select(Ticket).join(Customer, Ticket.customer_id == Customer.id)
                          .order_by(Ticket.id.desc())).all()
        s.expunge_all()
    from flows.identity import find
    with store.session() as s:
        [customer] = find(s, email=email)
        return next(t for t in found if t.customer_id == customer.id)


def mail_to(sandbox: Any, address: str) -> list[dict[str, Any]]:
    return [m for m in sandbox.mail() if address in m["to"]]


def happyfox_tickets(sandbox: Any) -> int:
    return len(sandbox.state("happyfox")["tickets"])


def restricted(kind: str = "restriction", email: str = EMAIL) -> int:
    request_id = requests.add(kind, email=email)
    requests.verify(request_id, "dpo@example.com", "known_address")
    # Restricted at once; a restriction waits for the IT contractor's task (the shipped YAML), an objection not.
    expected = "verified" if kind == "restriction" else "done"
    assert requests.run(request_id) == expected
    for task in requests.tasks(request_id):
        assert requests.confirm_task(request_id, task["processor"], "ops@example.com") == "done"
    assert requests.state_of(request_id) == "done"
    return request_id


def test_a_restricted_person_is_neither_written_nor_mailed_until_lifted(flow, tmp_path):
    assert run(put_form(EMAIL)) == "done"
    ticket = ticket_of(EMAIL)
    request_id = restricted()
    with store.session() as s:
        assert s.get(Customer, ticket.customer_id).restriction == "restriction"
    mails, hf_tickets = len(mail_to(flow, EMAIL)), happyfox_tickets(flow)

    # A new form, and staff closing the old ticket in HappyFox: both held, nothing written, nobody mailed.
    new_form = put_form(EMAIL, summary="Még egy kérdés")
    assert run(new_form) == "held"
    closed = fast_vendors().happyfox.update_ticket(ticket.happyfox_id, staff_id=1, status=CLOSED).raw
    closing = deliver("happyfox", closed)
    assert closing.outcome == "held"
    assert happyfox_tickets(flow) == hf_tickets and len(mail_to(flow, EMAIL)) == mails
    with store.session() as s:
        assert not s.get(Ticket, ticket.id).is_closed and s.get(Ticket, ticket.id).survey_sent_at is None
        assert s.get(InboxEvent, new_form).status == "held"
        held = [a.detail["inbox_id"] for a in s.scalars(select(Audit).where(Audit.action == "inbox.held"))]
    assert sorted(held) == sorted([new_form, closing.inbox_id])
    # The survey refuses on its own too (a reconcile finds closures without an event).
    assert survey.send_survey(ticket.id) is False

    # Somebody else is untouched; the person may still write to the privacy address.
    assert run(put_form(OTHER)) == "done" and mail_to(flow, OTHER)

    # The export says so.
    export = access.export(email=EMAIL, out_dir=tmp_path)
    assert export.data["switchboard"]["processing"]["restricted"] is True
    assert export.data["switchboard"]["processing"]["restriction"] == "restriction"
    assert [r["kind"] for r in export.data["switchboard"]["requests"]] == ["restriction"]
    assert "Processing" in export.html_path.read_text()

    # Lifted: what was held runs, once.
    with pytest.raises(requests.RequestError, match="say why"):
        requests.lift(request_id, "")
    replayed = requests.lift(request_id, "the accuracy of the data is confirmed")
    assert sorted(replayed) == sorted([new_form, closing.inbox_id])
    for inbox_id in sorted(replayed):
        assert run(inbox_id) == "done"
    assert happyfox_tickets(flow) == hf_tickets + 2  # the other person's and the held form's
    with store.session() as s:
        assert s.get(Ticket, ticket.id).is_closed and s.get(Customer, ticket.customer_id).restricted_at is None
    assert len(mail_to(flow, EMAIL)) == mails + 2  # the new form's confirmation and the survey
    with pytest.raises(requests.RequestError, match="lifted already"):
        requests.lift(request_id, "again")
    assert requests.detail(request_id)["outcome"]["replayed"] == 2


def test_an_objection_holds_too_and_only_restrictions_can_be_lifted(flow):
    assert run(put_form(EMAIL)) == "done"
    objection = restricted("objection")
    assert run(put_form(EMAIL, summary="Újra")) == "held"
    access_request = requests.add("access", email=OTHER)
    with pytest.raises(requests.RequestError, match="set no restriction"):
        requests.lift(access_request, "no")
    assert requests.lift(objection, "the objection was withdrawn by the person") != []


def test_a_privacy_mail_from_a_restricted_person_still_opens_a_request(flow):
    from sandbox.gmail import add_message
    assert run(put_form(EMAIL)) == "done"
    restricted()
    add_message(flow.running.sandbox, EMAIL, "adatvedelem@example.com", "Hozzáférés", "Kérem az adataim másolatát.")
    [inbox_id] = requests.poll_mailbox()
    assert run(inbox_id) == "done"
    assert [r.kind for r in requests.listing()] == ["access"]


def test_a_restriction_survives_a_merge_into_an_older_customer(flow):
    from flows import identity
    assert run(put_form(OTHER)) == "done"          # the older customer
    assert run(put_form(EMAIL)) == "done"
    restricted()
    with store.session() as s:
        [older] = identity.find(s, email=OTHER)
        [newer] = identity.find(s, email=EMAIL)
        kept = identity.merge(s, older, newer, "test", reason="one person")
        assert kept.id == older.id and kept.restriction == "restriction"
    assert run(put_form(OTHER, summary="Újra")) == "held"
