"""The status mirror and the survey on closure, over real HTTP against the sandbox: a HappyFox status change moves
the HubSpot mirror's stage through config.statuses, a closure sends exactly one survey, a reopen is mirrored, and a
change made on the HubSpot mirror is put back (or pushed) without an echo loop."""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from core import settings as settings_module
from core import store
from core.models import InboxEvent, Ticket
from core.settings import Settings
from flows.closure import reconcile, status_mirror
from webhooks.app import create_app

from .delivery import deliver
from .flowkit import fast_vendors, put, put_form, row, run, writes

STATUS = {"New": 1, "Pending": 2, "On Hold": 3, "In Progress": 4, "Reopened": 5, "Solved": 6, "Closed": 7}


def with_config(section: str, **values: Any) -> Settings:
    loaded = settings_module.get()
    spec = getattr(loaded.config, section).model_copy(update=values)
    return settings_module.use(Settings(env=loaded.env, config=loaded.config.model_copy(update={section: spec})))


def form_ticket(email: str = "zarolas@example.com") -> Ticket:
    """A ticket made by the form intake: HappyFox ticket, HubSpot contact and mirror, confirmation mail."""
    assert run(put_form(email)) == "done"
    with store.session() as s:
        ticket = s.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
        s.expunge_all()
    assert ticket.happyfox_id and ticket.hubspot_ticket_id
    return ticket


def set_status(ticket: Ticket, name: str) -> dict[str, Any]:
    """A staff member changes the status in HappyFox; the ticket after the change."""
    return fast_vendors().happyfox.update_ticket(ticket.happyfox_id, staff_id=1, status=STATUS[name]).raw


def deliver_ticket(happyfox_ticket: dict[str, Any], key: str | None = None) -> str:
    """The smart rule's webhook through the receiver, and its job. With `key`, the same change is stored as a row
    of its own instead (no receiver stores one change twice): what tests the flow's own idempotence."""
    if key is None:
        return deliver("happyfox", happyfox_ticket).outcome
    return run(put("happyfox", "ticket", {"ticket_id": happyfox_ticket["id"], "ticket": happyfox_ticket}, key))


def stage_change(ticket: Ticket, value: str, source: str = "CRM_UI", source_id: str = "userId:45678") -> str:
    """HubSpot's ticket.propertyChange event for the mirror's stage (docs/vendors/hubspot.md#event-payload)."""
    event = {"eventId": uuid.uuid4().int % 10**9, "subscriptionId": 2235, "portalId": 62515, "appId": 54321,
             "occurredAt": int(time.time() * 1000), "subscriptionType": "ticket.propertyChange",
             "attemptNumber": 0, "objectId": int(ticket.hubspot_ticket_id), "propertyName": "hs_pipeline_stage",
             "propertyValue": value, "changeSource": source, "sourceId": source_id}
    return deliver("hubspot", [event]).outcome


def mirror_stage(sandbox, ticket: Ticket) -> str:
    return sandbox.state("hubspot")["tickets"][ticket.hubspot_ticket_id]["properties"]["hs_pipeline_stage"]


def surveys(sandbox) -> list[dict[str, Any]]:
    return [m for m in sandbox.mail() if m["subject"].startswith("Mennyire volt elégedett")]


def fresh(ticket: Ticket) -> Ticket:
    with store.session() as s:
        found = s.get(Ticket, ticket.id)
        s.expunge_all()
    return found


def test_close_moves_the_stage_and_sends_one_survey_however_often_the_event_comes(flow):
    ticket = form_ticket()
    assert mirror_stage(flow, ticket) == "1"
    closed = set_status(ticket, "Closed")
    flow.clear_calls()
    assert deliver_ticket(closed) == "done"
    assert mirror_stage(flow, ticket) == "4"
    assert ("hubspot", "PATCH", f"/crm/v3/objects/tickets/{ticket.hubspot_ticket_id}") in writes(flow)
    [survey] = surveys(flow)
    assert survey["to"] == ["zarolas@example.com"] and "/survey/" in survey["text"]
    row_now = fresh(ticket)
    assert row_now.is_closed and row_now.status == "Closed" and row_now.closed_at is not None
    assert row_now.survey_sent_at is not None

    # HappyFox delivers the same change twice more (once with another key), and a reconciliation runs between.
    assert deliver_ticket(closed) == "skipped"  # the stored row is done: the inbox dedupes it
    reconcile.reconcile()
    flow.clear_calls()
    assert deliver_ticket(closed, key="close-1-again") == "done"
    assert writes(flow) == []  # the body shows nothing new: not even re-read
    assert len(surveys(flow)) == 1 and mirror_stage(flow, ticket) == "4"


def test_a_reopen_is_mirrored_and_closing_again_sends_no_second_survey(flow):
    ticket = form_ticket()
    deliver_ticket(set_status(ticket, "Solved"))
    assert mirror_stage(flow, ticket) == "4" and len(surveys(flow)) == 1
    deliver_ticket(set_status(ticket, "Reopened"))
    assert mirror_stage(flow, ticket) == "3"
    assert not fresh(ticket).is_closed and fresh(ticket).status == "Reopened"
    deliver_ticket(set_status(ticket, "Closed"))
    assert mirror_stage(flow, ticket) == "4" and fresh(ticket).is_closed
    assert len(surveys(flow)) == 1


def test_with_resend_on_reclose_each_closure_has_its_survey(flow):
    with_config("survey", resend_on_reclose=True)
    ticket = form_ticket()
    first = set_status(ticket, "Closed")
    deliver_ticket(first)
    deliver_ticket(set_status(ticket, "Reopened"))
    time.sleep(1.05)  # HappyFox stamps whole seconds: the second closure must have its own closing time
    second = set_status(ticket, "Closed")
    deliver_ticket(second)
    deliver_ticket(second, key="again")
    assert len(surveys(flow)) == 2


def test_our_own_stage_write_echoed_by_hubspot_costs_nothing(flow):
    ticket = form_ticket()
    deliver_ticket(set_status(ticket, "In Progress"))
    flow.clear_calls()
    assert stage_change(ticket, "3", source="INTEGRATION", source_id="54321") == "done"
    assert writes(flow) == []


def test_a_stage_changed_on_hubspot_is_put_back_once(flow):
    ticket = form_ticket()
    deliver_ticket(set_status(ticket, "In Progress"))
    fast_vendors().hubspot.update_ticket(ticket.hubspot_ticket_id, {"hs_pipeline_stage": "4"})  # someone in HubSpot
    flow.clear_calls()
    assert stage_change(ticket, "4") == "done"
    assert mirror_stage(flow, ticket) == "3"
    assert [w for w in writes(flow) if w[1] == "PATCH"] == [
        ("hubspot", "PATCH", f"/crm/v3/objects/tickets/{ticket.hubspot_ticket_id}")]
    assert fresh(ticket).status == "In Progress" and surveys(flow) == []  # HappyFox owns status: not closed
    flow.clear_calls()
    assert stage_change(ticket, "3", source="INTEGRATION", source_id="54321") == "done"  # the revert's echo
    assert writes(flow) == []
    assert stage_change(ticket, "4") == "done"  # a late copy of the first event: HubSpot holds 3 now
    assert [w for w in writes(flow) if w[1] != "GET"] == []


def test_push_mode_carries_a_hubspot_stage_change_to_happyfox(flow):
    with_config("hubspot", on_mirror_change="push")
    ticket = form_ticket()
    fast_vendors().hubspot.update_ticket(ticket.hubspot_ticket_id, {"hs_pipeline_stage": "4"})
    assert stage_change(ticket, "4") == "done"
    happyfox = fast_vendors().happyfox.get_ticket(ticket.happyfox_id).raw
    assert happyfox["status"]["name"] == "Closed" and mirror_stage(flow, ticket) == "4"
    assert fresh(ticket).is_closed and len(surveys(flow)) == 1
    flow.clear_calls()
    deliver_ticket(happyfox)  # HappyFox's event for the pushed change comes back: no write answers it
    assert [w for w in writes(flow) if w[1] != "GET"] == []


def test_the_whole_loop_over_real_webhooks_settles(flow, settings):
    """The sandbox sends HappyFox's and HubSpot's webhooks for every API change to our app; running every stored
    event until none is left must end with no further writes: no echo loop."""
    ticket = form_ticket("hurok@example.com")
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    flow.running.sandbox.webhook_url = f"http://127.0.0.1:{server.server_port}"
    try:
        set_status(ticket, "Closed")
        fast_vendors().hubspot.update_ticket(ticket.hubspot_ticket_id, {"hs_pipeline_stage": "2"})
        rounds = drain(flow)
    finally:
        server.shutdown()
    assert 1 <= rounds < 6
    with store.session() as s:
        handled = {(r.source, r.kind, r.status) for r in s.scalars(select(InboxEvent))}
    assert {("happyfox", "ticket", "done"), ("hubspot", "ticket.propertyChange", "done")} <= handled
    assert mirror_stage(flow, ticket) == "4" and len(surveys(flow)) == 1


def drain(sandbox: Any) -> int:
    """Run pending inbox rows (once the webhooks in flight are in) until a round finds none; the rounds."""
    for rounds in range(10):
        sandbox.wait_idle()
        with store.session() as s:
            pending = list(s.scalars(select(InboxEvent.id).where(InboxEvent.status.in_(("pending", "failed")))))
        if not pending:
            return rounds
        for inbox_id in pending:
            try:
                run(inbox_id)
            except Exception:  # SQLite refuses a write while a webhook is being stored: the next round retries
                pass
    return 10


def test_a_hubspot_outage_holds_neither_the_survey_nor_the_retry(flow):
    ticket = form_ticket()
    closed = set_status(ticket, "Closed")
    flow.fault(service="hubspot", method="PATCH", path="/crm/v3/objects/tickets/*", status=503, times=5)
    inbox_id = deliver("happyfox", closed, run=False).inbox_id
    with pytest.raises(Exception):
        run(inbox_id)
    assert row(inbox_id).status == "failed" and len(surveys(flow)) == 1  # the survey went before the mirror
    assert mirror_stage(flow, ticket) == "1"
    flow.http.delete("/_sandbox/faults").raise_for_status()
    assert run(inbox_id) == "done"
    assert mirror_stage(flow, ticket) == "4" and len(surveys(flow)) == 1


def test_a_status_missing_from_the_map_leaves_the_mirror_alone(flow, settings):
    ticket = form_ticket()
    statuses = {k: v for k, v in settings.config.statuses.items() if k != "in_progress"}
    settings_module.use(Settings(env=settings.env, config=settings.config.model_copy(update={"statuses": statuses})))
    flow.clear_calls()
    deliver_ticket(set_status(ticket, "In Progress"))
    assert mirror_stage(flow, ticket) == "1" and fresh(ticket).status == "In Progress"
    assert [w for w in writes(flow) if w[0] == "hubspot"] == []


def test_a_stage_event_about_a_ticket_we_do_not_know_is_ignored(flow):
    assert stage_change(Ticket(hubspot_ticket_id="999999"), "4") == "done"
    assert writes(flow) == [] and status_mirror.last_mirrored(1) is None
