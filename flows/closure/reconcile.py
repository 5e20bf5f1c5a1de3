"""Reconciliation: a periodic job (and `switchboard sync`) that finds what events missed and repairs it through the
same flows. Webhooks get lost, arrive out of order or fail for good; this is the net under them.

Two passes over what changed since the cursor, each oldest first:
1. HappyFox tickets (the system of record for tickets and status), 50 a page; per 100 of them one HubSpot search
   reads their mirrors' stages (`hs_object_id IN [...]`: HubSpot's search takes many ids in one call, its own
   4/s budget is paced by the connector). Drift found: a HappyFox ticket Switchboard does not know (intake
   registers it), a row without its HubSpot mirror (`missing_link` when the mirror stamped with our key exists,
   `missing_mirror` when none does, or it was deleted), a stale status, a wrong stage, a closed ticket without
   its survey: `status_mirror.mirror_status` repairs the last three.
2. HubSpot tickets modified since the cursor whose stage differs from what their status maps to: a stage change
   whose event was lost, handled as `hubspot.on_mirror_change` says (`status_mirror.on_mirror_changed`).
3. Aircall calls started since its own cursor (`cursors` row "reconcile:aircall": the last call's start and the ids
   done at it), 50 a page, oldest first (`GET /v1/calls?from=`): a call whose `call.ended` never reached us (the
   webhook was off) is stored as that event, under the receiver's key `call.ended:<id>`, and queued for the same
   flow as the receiver's events (the inbox job; not run here, since flows/dispatch.py routes to this package); one the webhook brought is a repeat of that key and only has tags or comments added since noted (same keys
   as the webhook path). The pass stops at the first call not ended yet, so the next run starts there.
4. Identities: HubSpot contacts modified since their cursor ("reconcile:contacts"), and the users of HappyFox
   tickets modified since theirs ("reconcile:users"), whose email or phone we do not hold for the customer they are linked to (an address changed
   there: no event tells us). The new value is added to the customer (merging when another customer holds it, as
   intake does); the old one stays, so earlier reports still find them.
5. The complaint register ("reconcile:complaints"): HappyFox tickets modified since its cursor that are complaints
   are read into the register as their event would have (`complaint_sync.sync_from_happyfox`, which mirrors the
   change onto HubSpot); a register field staff changed on the HubSpot mirror whose event was lost is not recovered
   (HubSpot's value and ours cannot say which is newer without the property history).
Each of 3-5 keeps its own cursor row (position and the ids done at it), so each costs what changed since.

The cursor (`cursors` row "reconcile", JSON) holds the run's window, its phase and the last ticket position done,
updated after every ticket, so a run that crashed resumes where it stopped. The next run starts from the last
completed run's start, less an overlap. A lease row keeps two runs (clock and CLI) from repairing at once.
"""
from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.errors import VendorError
from connectors.records import HappyFoxTicket, HubSpotObject
from connectors.records import AircallCallRecord
from core import audit, ingest, jobs, settings, store
from core.models import Complaint, Cursor, Customer, Erasure, Identity, Ticket
from core.progress import Step, quiet
from flows import alerts, effects, identity, vendors
from flows.closure import status_mirror
from flows.complaints import complaint_register, complaint_sync
from flows.intake import calls, enquiry
from flows.payloads import AircallCallEvent

log = logging.getLogger(__name__)
ACTOR = "reconcile"
CURSOR, LEASE = "reconcile", "reconcile:lease"
CURSOR_CHARS = 200                    # cursors.value is String(200)
LEASE_TTL = timedelta(minutes=30)
OVERLAP = timedelta(minutes=2)        # events stamped just before the last run started
FIRST_LOOKBACK = timedelta(days=1)    # the very first run: older tickets only with an explicit --since
GRACE = timedelta(minutes=5)          # a row this young may still be in intake: its mirror is not missing yet
BATCH = 100                           # HubSpot ids per search (IN filter) and per checkpointed chunk
KINDS = ("missing_mirror", "missing_link", "status", "wrong_stage", "survey", "call", "identity", "complaint")
AIRCALL_CURSOR, CONTACTS_CURSOR, USERS_CURSOR = "reconcile:aircall", "reconcile:contacts", "reconcile:users"
COMPLAINTS_CURSOR = "reconcile:complaints"

T = TypeVar("T")


@dataclass(frozen=True)
class Fix:
    kind: str        # one of KINDS
    ticket_id: int
    detail: str = ""


@dataclass
class ReconcileResult:
    since: datetime
    resumed: bool = False
    checked: int = 0
    fixes: list[Fix] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "happyfox 123: NotFound (HTTP 404)", never personal data
    seen: set[str] = field(default_factory=set, repr=False)  # mirrors checked in the HappyFox pass

    def counts(self) -> dict[str, int]:
        found = Counter(f.kind for f in self.fixes)
        return {kind: found[kind] for kind in KINDS}


@contextlib.contextmanager
def _repairing(report: ReconcileResult, system: str, remote_id: Any) -> Iterator[None]:
    """One ticket's repair. A permanent failure (a vendor's 4xx, missing vendor setup) is reported and the run
    goes on: one ticket no retry can mend must not stop every ticket after it, run after run. A transient one
    stops the run, which resumes from its cursor next time."""
    try:
        yield
    except (VendorError, vendors.MissingSetup) as exc:
        if getattr(exc, "transient", False):
            raise
        status = getattr(exc, "status", None)
        reason = type(exc).__name__ + (f" (HTTP {status})" if status else "")
        log.warning("reconcile: %s ticket %s not repaired: %s", system, remote_id, reason)
        report.failed.append(f"{system} {remote_id}: {reason}")
        alerts.raise_alert("reconcile.unmended", f"reconcile.unmended:{system}:{remote_id}:{reason}",
                           command="switchboard sync", page="/staff/tickets", system=system,
                           remote_id=str(remote_id), reason=reason)


class Busy(Exception):
    """Another reconciliation holds the lease."""


# ---------------------------------------------------------------- cursor and lease

def _now() -> datetime:
    return datetime.now(timezone.utc)


def _ensure(s: Session, name: str, value: str) -> Cursor:
    row = s.get(Cursor, name)
    if row is None:
        try:
            with s.begin_nested():
                s.add(Cursor(name=name, value=value))
        except IntegrityError:
            pass
        row = s.get(Cursor, name)
    assert row is not None  # added here, or by whoever won the race
    return row


def load_cursor() -> dict[str, Any] | None:
    with store.session() as s:
        row = s.get(Cursor, CURSOR)
        return json.loads(row.value) if row is not None and row.value else None


def _encode(state: dict[str, Any]) -> str:
    """The state as the cursor row holds it (200 characters). When the ids done at the current position do not
    fit, they are dropped: a resume then checks that second's tickets again, which repairs nothing twice."""
    text = json.dumps(state, separators=(",", ":"))
    if len(text) > CURSOR_CHARS:
        text = json.dumps({**state, "done": []}, separators=(",", ":"))
    return text


def save_cursor(state: dict[str, Any]) -> None:
    with store.session() as s:
        _ensure(s, CURSOR, "").value = _encode(state)


def _take_lease() -> bool:
    now = _now()
    with store.session() as s:
        _ensure(s, LEASE, "")
        taken = s.execute(update(Cursor).where(Cursor.name == LEASE, Cursor.value < now.isoformat())
                          .values(value=(now + LEASE_TTL).isoformat()))
        return store.rowcount(taken) == 1


def _release_lease() -> None:
    with store.session() as s:
        s.execute(update(Cursor).where(Cursor.name == LEASE).values(value=""))


def _window(since: datetime | None) -> tuple[dict[str, Any], bool]:
    """The run's state: a new window, or the crashed run's to resume; (state, resumed)."""
    previous = load_cursor()
    if since is None and previous is not None and previous.get("phase") != "done":
        return previous, True
    if since is None:
        since = (datetime.fromisoformat(previous["started"]) - OVERLAP) if previous else _now() - FIRST_LOOKBACK
    return {"since": since.replace(microsecond=0).isoformat(), "started": _now().replace(microsecond=0).isoformat(),
            "phase": "happyfox", "position": None, "done": []}, False


def _checkpoint(state: dict[str, Any], position: str | None, item_id: str) -> None:
    """Remember one more item done: its position (modification time), and which ids at that position are done,
    since many tickets share a second."""
    if position is None:
        return
    if state.get("position") != position:
        state["position"], state["done"] = position, []
    state["done"].append(item_id)
    save_cursor(state)


def _pending(items: Iterable[T], state: dict[str, Any], position: Callable[[T], str | None],
             ident: Callable[[T], str]) -> Iterator[T]:
    """Items not done before a crash: at the saved position, the ids already done are skipped."""
    done = set(state.get("done") or [])
    for item in items:
        if position(item) == state.get("position") and ident(item) in done:
            continue
        yield item


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---------------------------------------------------------------- HubSpot reads

def read_stages(hubspot_ids: list[str]) -> dict[str, str | None]:
    """Each mirror's stage, 100 ids a search; a mirror that no longer exists is absent. Search is eventually
    consistent (docs/vendors/hubspot.md#search), so an id it misses is confirmed by a GET before it counts as gone."""
    from connectors.errors import NotFound
    hubspot = vendors.get().hubspot
    stages: dict[str, str | None] = {}
    for chunk in _chunks(hubspot_ids, BATCH):
        for found in hubspot.tickets_by_ids(chunk, [status_mirror.STAGE_PROPERTY]):
            stages[found.id] = found.prop(status_mirror.STAGE_PROPERTY)
        for missing in [i for i in chunk if i not in stages]:
            try:
                stages[missing] = hubspot.get_ticket(missing).prop(status_mirror.STAGE_PROPERTY)
            except NotFound:
                pass
    return stages


# ---------------------------------------------------------------- repairs

def _create_mirror(row: Ticket, key: str, stage: str, searched: bool) -> str:
    """A HubSpot mirror for a ticket that has none, shaped as intake's, stamped with `key` so a retry finds it."""
    config = settings.get().config
    hubspot = vendors.get().hubspot
    prop = config.intake.hubspot_key_property
    category = config.categories.get(row.category or "") or config.categories.get(enquiry.DEFAULT_CATEGORY)
    properties = {"subject": " ".join(p for p in (row.happyfox_display_id, row.subject) if p) or "(no subject)",
                  "content": row.subject or "", "hs_pipeline": config.hubspot.pipeline,
                  "hs_pipeline_stage": stage, prop: key}
    if category is not None:
        properties["hs_ticket_category"] = category.hubspot
    with store.session() as s:
        contact_id = s.scalar(select(Identity.value).where(Identity.customer_id == row.customer_id,
                                                           Identity.system == "hubspot")) if row.customer_id else None

    def find() -> str | None:
        found = hubspot.find_ticket(prop, key)
        return found.id if found else None

    return effects.once(key, lambda: hubspot.create_ticket(properties, contact_id=contact_id).id,
                        find=find, retry=not searched)


def _erased(row: Ticket) -> bool:
    """An erasure in progress archives the mirror before it deletes the HappyFox ticket: never made again."""
    if row.customer_id is None:
        return False
    with store.session() as s:
        customer = s.get(Customer, row.customer_id)
        return (customer is not None and customer.erased_at is not None) or s.scalar(
            select(Erasure.id).where(Erasure.customer_id == row.customer_id).limit(1)) is not None


def _link_mirror(row: Ticket, report: ReconcileResult) -> tuple[str, str | None]:
    """Give a row whose mirror is missing (never made, or deleted in HubSpot) its mirror; (its id, its stage)."""
    config = settings.get().config
    old = row.hubspot_ticket_id
    key = f"hubspot-ticket:{row.source_key}" + (f":after:{old}" if old else "")
    target = status_mirror.stage_for(row.status) or config.hubspot.default_stage
    found = None if old else vendors.get().hubspot.find_ticket(config.intake.hubspot_key_property, key)
    if found is not None:
        hubspot_id, kind = found.id, "missing_link"
        stage = found.prop(status_mirror.STAGE_PROPERTY)
    else:
        hubspot_id, kind, stage = _create_mirror(row, key, target, searched=not old), "missing_mirror", target
    with store.session() as s:
        current = s.get(Ticket, row.id)
        assert current is not None
        current.hubspot_ticket_id = hubspot_id
        audit.record(s, ACTOR, f"reconcile.{kind}", customer_id=current.customer_id, ticket_id=row.id,
                     hubspot_ticket_id=hubspot_id, replaced=old)
    if stage is not None:
        status_mirror.remember_stage(row.id, hubspot_id, stage)
    report.fixes.append(Fix(kind, row.id, f"HubSpot ticket {hubspot_id}"))
    return hubspot_id, stage


def _record(result: status_mirror.Mirrored | None, report: ReconcileResult) -> None:
    if result is None:
        return
    if result.closed_now or result.reopened:
        report.fixes.append(Fix("status", result.ticket_id, f"now {result.status}"))
    if result.stage_written is not None:
        report.fixes.append(Fix("wrong_stage", result.ticket_id, f"stage {result.stage_written}"))
    if result.survey_sent:
        report.fixes.append(Fix("survey", result.ticket_id, "survey sent"))


def _unknown_happyfox(ticket: HappyFoxTicket, report: ReconcileResult) -> None:
    """A HappyFox ticket Switchboard never registered (a mailbox ticket whose event was lost). One Switchboard
    created carries our key: its row went missing with a database restore, and nothing is guessed."""
    if enquiry.stamped_key(ticket):
        log.warning("HappyFox ticket %s carries our key but has no row here; left alone", ticket.id)
        alerts.raise_alert("reconcile.unmended", f"reconcile.unmended:happyfox:{ticket.id}:no_row",
                           command="switchboard sync", page="/staff/tickets", system="happyfox",
                           remote_id=str(ticket.id), reason="carries our key but has no row here")
        return
    if enquiry.erased_ticket(ticket.id):  # an erased person's ticket that HappyFox still shows
        return
    received = ticket.created_at or _now()
    ticket_id = enquiry.register(enquiry.enquiry_from_happyfox(ticket, received))
    report.fixes.append(Fix("missing_mirror", ticket_id, f"registered HappyFox ticket {ticket.id}"))
    _record(status_mirror.mirror_status(ticket_id, ticket), report)


def _happyfox_chunk(chunk: list[HappyFoxTicket], state: dict[str, Any], report: ReconcileResult,
                    tick: Callable[[], None]) -> None:
    ids = [t.id for t in chunk]
    with store.session() as s:
        rows = {r.happyfox_id: r for r in s.scalars(select(Ticket).where(Ticket.happyfox_id.in_(ids)))}
        s.expunge_all()
    stages = read_stages([r.hubspot_ticket_id for r in rows.values() if r.hubspot_ticket_id])
    young = _now() - GRACE
    for ticket in chunk:
        row = rows.get(ticket.id)
        with _repairing(report, "happyfox", ticket.id):
            if row is None:
                _unknown_happyfox(ticket, report)
            else:
                hubspot_id = row.hubspot_ticket_id
                stage = stages.get(hubspot_id) if hubspot_id else None
                if (hubspot_id is None or hubspot_id not in stages) and row.opened_at < young \
                        and not _erased(row):
                    hubspot_id, stage = _link_mirror(row, report)
                _record(status_mirror.mirror_status(row.id, ticket, hubspot_stage=stage), report)
                if hubspot_id:
                    report.seen.add(hubspot_id)
        report.checked += 1
        stamp = ticket.modified_at
        _checkpoint(state, stamp.isoformat() if stamp else None, str(ticket.id))
        tick()


def _happyfox_pass(state: dict[str, Any], report: ReconcileResult, on_step: Step) -> None:
    start = datetime.fromisoformat(state.get("position") or state["since"])
    tickets = vendors.get().happyfox.tickets(updated_since=start)
    first = report.checked

    def tick() -> None:  # paged: the total is known only at the end
        on_step("HappyFox tickets", report.checked - first, None)

    def position(t: HappyFoxTicket) -> str | None:
        stamp = t.modified_at
        return stamp.isoformat() if stamp else None

    tick()
    for chunk in _chunks(_pending(tickets, state, position, lambda t: str(t.id)), BATCH):
        _happyfox_chunk(chunk, state, report, tick)


def _hubspot_stamp(ticket: HubSpotObject) -> str | None:
    value = ticket.prop("hs_lastmodifieddate")
    return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat() if value else None


def _hubspot_pass(state: dict[str, Any], report: ReconcileResult, on_step: Step) -> None:
    start = datetime.fromisoformat(state.get("position") or state["since"])
    # Listed in full before repairing: a repair bumps the mirror's modification time, which would shift the
    # offset-paged search under our feet and skip a ticket.
    listed: list[HubSpotObject] = []
    on_step("HubSpot mirrors listed", 0, None)
    for mirror in _pending(vendors.get().hubspot.tickets_modified_since(start), state, _hubspot_stamp,
                           lambda t: t.id):
        listed.append(mirror)
        on_step("HubSpot mirrors listed", len(listed), None)
    on_step("HubSpot mirrors", 0, len(listed))
    first = report.checked
    for chunk in _chunks(listed, BATCH):
        with store.session() as s:
            rows = {r.hubspot_ticket_id: r for r in s.scalars(
                select(Ticket).where(Ticket.hubspot_ticket_id.in_([t.id for t in chunk])))}
            s.expunge_all()
        for mirror in chunk:
            row = rows.get(mirror.id)
            stage = mirror.prop(status_mirror.STAGE_PROPERTY)
            target = status_mirror.stage_for(row.status) if row is not None else None
            if row is not None and mirror.id not in report.seen and target is not None and stage != target:
                with _repairing(report, "hubspot", mirror.id):
                    before = len(report.fixes)
                    if status_mirror.on_mirror_changed(row.id, current=stage) == "unchanged":
                        _record(status_mirror.mirror_status(row.id, hubspot_stage=stage), report)
                    if len(report.fixes) == before:
                        report.fixes.append(Fix("wrong_stage", row.id, f"HubSpot stage {stage} handled"))
            report.checked += 1
            _checkpoint(state, _hubspot_stamp(mirror), mirror.id)
            on_step("HubSpot mirrors", report.checked - first, len(listed))


# ---------------------------------------------------------------- Aircall calls

def _load(name: str) -> dict[str, Any] | None:
    with store.session() as s:
        row = s.get(Cursor, name)
        return json.loads(row.value) if row is not None and row.value else None


def _save(name: str, state: dict[str, Any]) -> None:
    with store.session() as s:
        _ensure(s, name, "").value = _encode(state)


def _backfill_call(call: AircallCallRecord, report: ReconcileResult) -> None:
    """The call's `call.ended` as the receiver would have stored it (same key, so the webhook arriving late, or
    having come already, is a repeat), run through the same flow; a call the webhook brought gets only the tags
    and comments added since."""
    payload = {"resource": "call", "event": "call.ended", "timestamp": int(_now().timestamp()), "data": call.raw}
    [(inbox_id, created)] = ingest.store_events("aircall", [(f"call.ended:{call.id}", "call.ended", payload)])
    if created:  # queued by the store, as the receiver's are: the worker runs the call's flow
        report.fixes.append(Fix("call", 0, f"Aircall call {call.id} backfilled (inbox {inbox_id})"))
        return
    noted = calls.annotate(calls.Call.from_payload(AircallCallEvent.model_validate(payload).data))
    if noted:
        report.fixes.append(Fix("call", 0, f"Aircall call {call.id}: {noted} tag(s) or comment(s) noted"))


def _aircall_pass(since: datetime | None, report: ReconcileResult, on_step: Step) -> None:
    state = _load(AIRCALL_CURSOR)
    if since is not None or state is None:
        start = since or _now() - FIRST_LOOKBACK
        state = {"position": str(int(start.timestamp())), "done": []}
    first = report.checked
    on_step("Aircall calls", 0, None)
    listed = vendors.get().aircall.calls(since=datetime.fromtimestamp(int(state["position"]), timezone.utc))
    for call in _pending(listed, state, lambda c: str(c.started_at), lambda c: str(c.id)):
        if call.raw.get("ended_at") is None:  # still ringing or talking: the next run starts here
            break
        with _repairing(report, "aircall", call.id):
            _backfill_call(call, report)
        report.checked += 1
        _checkpoint_to(AIRCALL_CURSOR, state, str(call.started_at) if call.started_at is not None else None,
                       str(call.id))
        on_step("Aircall calls", report.checked - first, None)


def _start(name: str, since: datetime | None) -> dict[str, Any]:
    """A pass's own state: its cursor, or a new one from `since` (or the first lookback)."""
    state = _load(name)
    if since is not None or state is None:
        state = {"position": (since or _now() - FIRST_LOOKBACK).isoformat(), "done": []}
    return state


# ---------------------------------------------------------------- identities

def _learn(system: str, remote_id: str, values: list[tuple[str, str | None]], report: ReconcileResult) -> None:
    """The email and phones a vendor shows for the contact (or user) linked to one of our customers, added where
    we do not hold them."""
    with store.session() as s:
        customer_id = s.scalar(select(Identity.customer_id).where(Identity.system == system,
                                                                  Identity.value == str(remote_id)))
        customer = identity.current(s, customer_id) if customer_id is not None else None
        if customer is None or customer.erased_at is not None or s.scalar(
                select(Erasure.id).where(Erasure.customer_id == customer.id).limit(1)) is not None:
            return
        added = []
        for kind, raw in values:
            value = identity.normalise(kind, raw)
            if value is None or s.scalar(select(Identity.id).where(
                    Identity.customer_id == customer.id, Identity.system == kind, Identity.value == value)):
                continue
            customer = identity.add_identity(s, customer, kind, value, ACTOR)
            added.append(kind)
        if added:
            audit.record(s, ACTOR, "reconcile.identity", customer_id=customer.id, system=system,
                         added=sorted(set(added)))
            report.fixes.append(Fix("identity", 0, f"customer {customer.id}: {', '.join(sorted(set(added)))} "
                                                   f"from {system}"))


def _contacts_pass(since: datetime | None, report: ReconcileResult, on_step: Step) -> None:
    state = _start(CONTACTS_CURSOR, since)
    start = datetime.fromisoformat(state["position"])
    on_step("Contacts", 0, None)
    first = report.checked

    def stamp(contact: HubSpotObject) -> str | None:
        value = contact.prop("lastmodifieddate")
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat() if value else None

    # HappyFox users as their changed tickets show them (a user's details ride on their tickets), by a cursor of
    # their own; then HubSpot's changed contacts.
    users = _start(USERS_CURSOR, since)

    def modified(t: HappyFoxTicket) -> str | None:
        return t.modified_at.isoformat() if t.modified_at else None

    for ticket in _pending(vendors.get().happyfox.tickets(updated_since=datetime.fromisoformat(users["position"])),
                           users, modified, lambda t: str(t.id)):
        user = ticket.user
        if user is not None:
            with _repairing(report, "happyfox", ticket.id):
                _learn("happyfox", str(user.id), [("email", user.email), ("phone", user.primary_phone.number
                                                                          if user.primary_phone else None)], report)
        _checkpoint_to(USERS_CURSOR, users, modified(ticket), str(ticket.id))
    _finish(USERS_CURSOR, users)
    for contact in _pending(vendors.get().hubspot.contacts_modified_since(start), state, stamp, lambda c: c.id):
        with _repairing(report, "hubspot", contact.id):
            _learn("hubspot", contact.id, [("email", contact.prop("email")), ("phone", contact.prop("phone")),
                                           ("phone", contact.prop("mobilephone"))], report)
        report.checked += 1
        _checkpoint_to(CONTACTS_CURSOR, state, stamp(contact), contact.id)
        on_step("Contacts", report.checked - first, None)
    _finish(CONTACTS_CURSOR, state)


# ---------------------------------------------------------------- the complaint register

def _complaints_pass(since: datetime | None, report: ReconcileResult, on_step: Step) -> None:
    state = _start(COMPLAINTS_CURSOR, since)
    start = datetime.fromisoformat(state["position"])
    on_step("Complaints", 0, None)
    first = report.checked

    def position(t: HappyFoxTicket) -> str | None:
        return t.modified_at.isoformat() if t.modified_at else None

    for ticket in _pending(vendors.get().happyfox.tickets(updated_since=start), state, position,
                           lambda t: str(t.id)):
        with store.session() as s:
            row = s.scalar(select(Ticket.id).where(Ticket.happyfox_id == ticket.id))
            before = _register_row(s, row) if row is not None else None
        if row is not None and (before is not None or
                                complaint_register.complaint_category(ticket.category_id) is not None):
            with _repairing(report, "happyfox", ticket.id):
                complaint_id = complaint_sync.sync_from_happyfox(ticket)
                with store.session() as s:
                    after = _register_row(s, row)
                if complaint_id is not None and after != before:
                    report.fixes.append(Fix("complaint", row, f"complaint {complaint_id} brought in step"))
        report.checked += 1
        _checkpoint_to(COMPLAINTS_CURSOR, state, position(ticket), str(ticket.id))
        on_step("Complaints", report.checked - first, None)
    _finish(COMPLAINTS_CURSOR, state)


def _register_row(s: Session, ticket_id: int) -> dict[str, Any] | None:
    """The register record of a ticket as plain values, to tell whether a sync changed it."""
    complaint = s.scalar(select(Complaint).where(Complaint.ticket_id == ticket_id))
    if complaint is None:
        return None
    return {c.key: getattr(complaint, c.key) for c in Complaint.__table__.columns if c.key != "updated_at"}


def _finish(name: str, state: dict[str, Any]) -> None:
    """A pass that read to its end forgets the ids done at its last position: the next run reads that position
    again (its items are repaired already, so nothing is written), and so sees an item changed again within the
    same second, which a kept id would skip for good."""
    state["done"] = []
    _save(name, state)


def _checkpoint_to(name: str, state: dict[str, Any], position: str | None, item_id: str) -> None:
    if position is None:
        return
    if state.get("position") != position:
        state["position"], state["done"] = position, []
    state["done"].append(item_id)
    _save(name, state)


# ---------------------------------------------------------------- the run

def reconcile(since: datetime | None = None, on_step: Step = quiet) -> ReconcileResult:
    """One reconciliation run: resumes a crashed run unless `since` starts a new window. Raises Busy when
    another run holds the lease. `on_step` counts the tickets of each pass (and the HubSpot mirrors listed)."""
    if not _take_lease():
        raise Busy("another reconciliation is running")
    try:
        state, resumed = _window(since)
        report = ReconcileResult(since=datetime.fromisoformat(state["since"]), resumed=resumed)
        save_cursor(state)
        if state["phase"] == "happyfox":
            _happyfox_pass(state, report, on_step)
            state.update(phase="hubspot", position=None, done=[])
            save_cursor(state)
        if state["phase"] == "hubspot":
            _hubspot_pass(state, report, on_step)
            state.update(phase="done", position=None, done=[])
            save_cursor(state)
        _aircall_pass(since, report, on_step)
        _contacts_pass(since, report, on_step)
        _complaints_pass(since, report, on_step)
    finally:
        _release_lease()
    if report.fixes:
        log.info("reconciliation fixed %s", ", ".join(f"{k} {n}" for k, n in report.counts().items() if n))
        with store.session() as s:
            audit.record(s, ACTOR, "reconcile.run", checked=report.checked, **report.counts())
    return report


@jobs.periodic(jobs.crontab(minute="*/10"))
def reconcile_job() -> int:
    """The periodic run; the number of repairs."""
    try:
        return len(reconcile().fixes)
    except Busy:
        log.info("reconciliation skipped: another run holds the lease")
        return 0
