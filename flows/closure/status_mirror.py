"""Closure: HappyFox owns a ticket's status (it is the tickets' system of record); Switchboard mirrors it onto our row
and onto the HubSpot ticket's pipeline stage through `config.statuses`, and a closure sends the survey (policy 000: "at
the same moment the ticket is closed").

- `mirror_status(ticket_id)`: the one flow. It re-reads the HappyFox ticket (a webhook body is only a hint,
  docs/vendors/happyfox.md#webhooks), records status, closure or reopening on our row, calls `survey.on_ticket_closed`
  when closed (it sends once per ticket, or once per closure with `survey.resend_on_reclose`), and writes the stage to
  HubSpot when it differs from what the mirror holds.
- A change made on the HubSpot mirror (`ticket.propertyChange` of `hs_pipeline_stage`) is put back ("revert", the
  default) or carried to HappyFox ("push"), as `hubspot.on_mirror_change` says.

No echo loop: the stage we last wrote is remembered per ticket (effects row `hubspot-stage:<ticket id>`); a HubSpot
event carrying it, or our `hubspot.source_id`, is our own write coming back. Past that cheap filter the mirror's current
stage is read (HubSpot does not order its events, docs/vendors/hubspot.md#delivery-and-echoes), and nothing is written
when the two systems already agree, so each side's write produces at most one answering write.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connectors.records import HappyFoxTicket, HappyFoxTicketFields
from core import audit, settings, store
from core.models import Effect, Ticket
from core.settings import StatusSpec
from flows import inbox, payloads, vendors
from flows.closure import survey

log = logging.getLogger(__name__)
ACTOR = "closure"
STAGE_PROPERTY = "hs_pipeline_stage"


@dataclass
class Mirrored:
    """What `mirror_status` found and did (reconciliation prints it)."""
    ticket_id: int
    status: str | None
    closed: bool
    closed_now: bool = False
    reopened: bool = False
    survey_sent: bool = False
    stage_written: str | None = None
    mirror_missing: bool = False


# ---------------------------------------------------------------- the status map

def status_spec(name: str | None) -> StatusSpec | None:
    """The `config.statuses` entry listing this HappyFox status name (names compared without case)."""
    if not name:
        return None
    wanted = name.strip().lower()
    for spec in settings.get().config.statuses.values():
        if any(n.strip().lower() == wanted for n in spec.happyfox):
            return spec
    return None


def happyfox_status(ticket: HappyFoxTicketFields) -> tuple[str | None, bool]:
    """(status name, closed?) of a HappyFox ticket. The ticket embeds `{"id", "name", "behavior"}`
    (docs/vendors/happyfox.md#the-ticket-object); a status missing from the map counts as closed when its behavior is
    "completed"."""
    name, behavior = ticket.status_name, ticket.status_behavior
    spec = status_spec(name)
    return name, (spec.closed if spec is not None else behavior == "completed")


def stage_for(status_name: str | None) -> str | None:
    spec = status_spec(status_name)
    return spec.hubspot_stage if spec is not None else None


def _changed_at(ticket: HappyFoxTicketFields, name: str | None) -> datetime:
    """When HappyFox moved the ticket to `name`: that status change's update, else its last modification. The
    vendor's time, so every delivery and every reconciliation of one closure names the same moment."""
    for update in reversed(ticket.updates):
        if update.status_change is not None and update.status_change.new_name == name and update.timestamp:
            return update.timestamp
    return ticket.modified_at or datetime.now(timezone.utc)


# ---------------------------------------------------------------- the stage we last wrote

def _stage_key(ticket_id: int) -> str:
    return f"hubspot-stage:{ticket_id}"


def last_mirrored(ticket_id: int) -> str | None:
    """The stage Switchboard last wrote to (or found on) the ticket's HubSpot mirror."""
    with store.session() as s:
        effect = s.get(Effect, _stage_key(ticket_id))
        return (effect.detail or {}).get("stage") if effect is not None else None


def remember_stage(ticket_id: int, hubspot_id: str, stage: str) -> None:
    with store.session() as s:
        effect = s.get(Effect, _stage_key(ticket_id))
        if effect is None:
            try:
                with s.begin_nested():
                    store.record_effect(s, _stage_key(ticket_id), hubspot_id, {"stage": stage})
                return
            except IntegrityError:  # a concurrent mirror recorded first; ours is as recent
                effect = s.get(Effect, _stage_key(ticket_id))
        assert effect is not None
        effect.remote_id, effect.detail = hubspot_id, {"stage": stage}


# ---------------------------------------------------------------- the flow

def _record_status(ticket_id: int, name: str | None, closed: bool, changed_at: datetime) -> tuple[bool, bool]:
    """Our row follows HappyFox; (closed now, reopened)."""
    with store.session() as s:
        row = s.get(Ticket, ticket_id)
        assert row is not None
        closed_now, reopened = closed and not row.is_closed, row.is_closed and not closed
        row.status = name
        if closed_now:
            row.is_closed, row.closed_at = True, changed_at
            audit.record(s, ACTOR, "ticket.closed", customer_id=row.customer_id, ticket_id=row.id, status=name)
        elif reopened:
            row.is_closed = False
            audit.record(s, ACTOR, "ticket.reopened", customer_id=row.customer_id, ticket_id=row.id, status=name)
        return closed_now, reopened


def _write_stage(ticket_id: int, hubspot_id: str, target: str, current: str | None) -> tuple[str | None, bool]:
    """Set the mirror's stage to `target` unless it holds it; (stage written, mirror missing). `current` is the
    stage read from HubSpot, or None to trust what we last wrote (intake created the mirror at default_stage)."""
    from connectors.errors import NotFound
    last = last_mirrored(ticket_id)
    if current is None:
        current = last or settings.get().config.hubspot.default_stage
    if current == target:
        if last != target:
            remember_stage(ticket_id, hubspot_id, target)
        return None, False
    try:
        vendors.get().hubspot.update_ticket(hubspot_id, {STAGE_PROPERTY: target})
    except NotFound:
        log.warning("ticket %s: its HubSpot mirror %s is gone; reconciliation recreates it", ticket_id, hubspot_id)
        return None, True
    remember_stage(ticket_id, hubspot_id, target)
    with store.session() as s:
        audit.record(s, ACTOR, "hubspot.stage_mirrored", ticket_id=ticket_id, hubspot_ticket_id=hubspot_id,
                     stage=target, was=current)
    return target, False


def mirror_status(ticket_id: int, happyfox_ticket: HappyFoxTicket | None = None, *,
                  hubspot_stage: str | None = None) -> Mirrored | None:
    """Bring our row and the HubSpot mirror in line with the HappyFox ticket's status; a closure sends the
    survey. `happyfox_ticket` is a fresh read when the caller has one; `hubspot_stage` the mirror's stage when
    the caller read it (reconciliation). None when the ticket has no HappyFox ticket yet."""
    with store.session() as s:
        row = s.get(Ticket, ticket_id)
        if row is None or row.happyfox_id is None:
            return None
        happyfox_id = row.happyfox_id
    ticket = happyfox_ticket if happyfox_ticket is not None else vendors.get().happyfox.get_ticket(happyfox_id)
    name, closed = happyfox_status(ticket)
    closed_now, reopened = _record_status(ticket_id, name, closed, _changed_at(ticket, name))
    result = Mirrored(ticket_id, name, closed, closed_now=closed_now, reopened=reopened)
    if closed:
        # Before the HubSpot write: a HubSpot outage must not hold the customer's survey back. Idempotent, so a
        # repeated event or a reconciliation sends nothing more.
        result.survey_sent = survey.on_ticket_closed(ticket_id)
    with store.session() as s:
        current = s.get(Ticket, ticket_id)
        hubspot_id = current.hubspot_ticket_id if current is not None else None
    target = stage_for(name)
    if target is None:
        log.warning("ticket %s: HappyFox status %r is not in config statuses; the mirror is left as it is",
                    ticket_id, name)
    elif hubspot_id:
        result.stage_written, result.mirror_missing = _write_stage(ticket_id, hubspot_id, target, hubspot_stage)
    return result


# ---------------------------------------------------------------- HubSpot-side changes

def _happyfox_status_id(stage: str) -> int | None:
    """The HappyFox status a stage pushes to: the first name of the first `config.statuses` entry with that stage,
    its id looked up once per process (`statuses/`, docs/vendors/happyfox.md#discovery-lists)."""
    spec = next((s for s in settings.get().config.statuses.values() if s.hubspot_stage == stage), None)
    if spec is None or not spec.happyfox:
        return None
    current = vendors.get()
    ids: dict[str, int] = current.__dict__.setdefault("_happyfox_status_ids", {})
    if not ids:
        ids.update({str(item.name).lower(): item.id for item in current.happyfox.statuses()})
    return ids.get(spec.happyfox[0].lower())


def on_mirror_changed(ticket_id: int, current: str | None = None) -> str:
    """The HubSpot mirror's stage was changed by someone else: put it back, or push it to HappyFox. Returns
    "unchanged", "reverted" or "pushed"."""
    with store.session() as s:
        row = s.get(Ticket, ticket_id)
        assert row is not None
        hubspot_id, happyfox_id = row.hubspot_ticket_id, row.happyfox_id
    if not hubspot_id or happyfox_id is None:
        return "unchanged"
    v = vendors.get()
    if current is None:
        current = v.hubspot.get_ticket(hubspot_id).prop(STAGE_PROPERTY)
    if current is None or current == last_mirrored(ticket_id):
        return "unchanged"  # a late echo of our own write, or already put back
    status_id = _happyfox_status_id(current)
    if settings.get().config.hubspot.on_mirror_change == "push" and status_id is not None:
        ticket = v.happyfox.get_ticket(happyfox_id)
        if stage_for(happyfox_status(ticket)[0]) != current:
            ticket = v.happyfox.update_ticket(happyfox_id, staff_id=settings.get().config.intake.staff_id,
                                              status=status_id)
        remember_stage(ticket_id, hubspot_id, current)  # before HappyFox's own event comes back: no echo
        with store.session() as s:
            audit.record(s, ACTOR, "happyfox.status_pushed", ticket_id=ticket_id, stage=current)
        mirror_status(ticket_id, ticket, hubspot_stage=current)
        return "pushed"
    mirror_status(ticket_id, hubspot_stage=current)
    return "reverted"


def _is_echo(change: payloads.HubSpotEvent, ticket_id: int) -> bool:
    """Our own write coming back (docs/vendors/hubspot.md#delivery-and-echoes): our source id, or the value we last
    wrote."""
    source_id = settings.get().config.hubspot.source_id
    if source_id and (change.source_id or "") == source_id:
        return True
    return str(change.property_value) == last_mirrored(ticket_id)


def on_hubspot_ticket_change(event: inbox.Event) -> str | None:
    change = payloads.read(event, payloads.HubSpotEvent)
    if change.property_name != STAGE_PROPERTY:
        return None
    with store.session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.hubspot_ticket_id == str(change.object_id)))
    if ticket_id is None or _is_echo(change, ticket_id):
        return None
    return on_mirror_changed(ticket_id)


def _in_step(ticket_id: int, hint: HappyFoxTicketFields) -> bool:
    """Whether the event's body shows the status our row and the mirror already have: then nothing is read or
    written (a reply or a note changes no status). The body is only trusted to say "no change"; any difference
    is checked against a fresh read. A body without a status says nothing about one: no read either (the smart
    rules post the whole ticket; what a bare body hides, reconciliation finds)."""
    name, closed = happyfox_status(hint)
    if name is None:
        return True
    with store.session() as s:
        row = s.get(Ticket, ticket_id)
        assert row is not None
        if row.status != name or row.is_closed != closed or (closed and row.survey_sent_at is None):
            return False
        hubspot_id = row.hubspot_ticket_id
    target = stage_for(name)
    mirrored = last_mirrored(ticket_id) or settings.get().config.hubspot.default_stage
    return not hubspot_id or target is None or mirrored == target


def on_happyfox_ticket(event: inbox.Event) -> Mirrored | None:
    """Runs after intake's handler for the same event (flows/routes.py), so a mailbox ticket is already
    linked. A ticket we do not know (not yet linked, or deleted) is left to reconciliation."""
    change = payloads.read(event, payloads.HappyFoxTicketEvent)
    with store.session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.happyfox_id == change.ticket_id))
    if ticket_id is None or _in_step(ticket_id, change.hint):
        return None
    from connectors.errors import NotFound
    try:
        return mirror_status(ticket_id)
    except NotFound:  # deleted in HappyFox since the event: nothing left to mirror
        log.info("ticket %s: its HappyFox ticket is gone", ticket_id)
        return None
