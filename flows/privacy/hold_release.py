"""What an erasure kept for a complaint's legal hold (flows/complaints/complaint_hold.py), erased by id once every hold on it
has ended: daily, after the retention sweep. Each release completes the erasure step's receipt (`kept.released`)
and tombstones what it erased.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import select

from core import audit, jobs, store
from core.jobs import crontab
from core.models import Erasure, ErasureStep, InboxEvent, Ticket
from flows import vendors
from flows.complaints import complaint_hold
from flows.privacy import erasure_steps, tombstones

log = logging.getLogger(__name__)
ACTOR = complaint_hold.ACTOR


def _release_happyfox(kept: dict[str, Any]) -> dict[str, Any]:
    happyfox = vendors.get().happyfox
    from connectors.errors import NotFound
    deleted = {t: happyfox.delete_ticket(t) for t in kept.get("happyfox_ticket", [])}
    users = {}
    for user_id in kept.get("happyfox", []):
        try:
            happyfox.anonymise_user(user_id)
            users[user_id] = "anonymised"
        except NotFound:
            users[user_id] = "gone"
    return {"tickets_deleted": deleted, "contacts_anonymised": users}


def _release_hubspot(kept: dict[str, Any]) -> dict[str, Any]:
    hubspot = vendors.get().hubspot
    archived = {}
    for ticket_id in kept.get("hubspot_ticket", []):
        erasure_steps.tolerant(hubspot.update_ticket, ticket_id, erasure_steps.REDACTED_TICKET)
        archived[ticket_id] = hubspot.archive_ticket(ticket_id)
    contacts = {c: hubspot.gdpr_delete_contact(c) for c in kept.get("hubspot", [])}
    return {"tickets_archived": archived, "contacts_gdpr_deleted": contacts}


def _release_aircall(kept: dict[str, Any]) -> dict[str, Any]:
    from connectors.errors import NotFound
    aircall = vendors.get().aircall
    done = {}
    for call_id in kept.get("aircall_call", []):
        try:
            call = aircall.get_call(call_id)
        except NotFound:
            done[call_id] = "gone"
            continue
        if call.recording:
            aircall.delete_recording(call_id)
        if call.voicemail:
            aircall.delete_voicemail(call_id)
        done[call_id] = "already_archived" if call.archived else aircall.archive_call(call_id)
    return {"calls_archived": done}


def _release_gmail(kept: dict[str, Any]) -> dict[str, Any]:
    ids = list(kept.get("gmail_message", []))
    if ids:
        vendors.get().gmail.delete_messages(ids)
    return {"messages_deleted": ids}


def _release_switchboard(kept: dict[str, Any]) -> dict[str, Any]:
    """The held tickets become anonymous statistics; the vendor events about them that came in during the hold
    (they carry the complainant's contact) are redacted like an erasure's."""
    happyfox = {str(i) for i in kept.get("happyfox_ticket", [])}
    hubspot = {str(i) for i in kept.get("hubspot_ticket", [])}
    redacted = 0
    with store.session() as s:
        for ticket in s.scalars(select(Ticket).where(Ticket.id.in_(kept.get("ticket", [])))):
            ticket.subject = ticket.survey_comment = ticket.survey_token = None
            ticket.happyfox_id = ticket.hubspot_ticket_id = None
        for row in s.scalars(select(InboxEvent).where(InboxEvent.source.in_(("happyfox", "hubspot")))):
            payload = row.payload if isinstance(row.payload, dict) else {}
            about = str(payload.get("ticket_id") if row.source == "happyfox" else payload.get("objectId"))
            if about in (happyfox if row.source == "happyfox" else hubspot):
                row.payload = {"erased": "complaint hold ended"}
                redacted += 1
    return {"tickets_anonymised": list(kept.get("ticket", [])), "inbox_redacted": redacted}


RELEASE = {"happyfox": _release_happyfox, "hubspot": _release_hubspot, "aircall": _release_aircall,
           "gmail": _release_gmail, "switchboard": _release_switchboard}
# What each released object is tombstoned as (the systems of flows/privacy/tombstones.py).
TOMBSTONED = ("happyfox", "happyfox_ticket", "hubspot", "hubspot_ticket", "aircall_call")


def release_ended(today: date | None = None) -> list[tuple[int, str]]:
    """Erase what erasures kept for complaints whose hold has ended; (erasure id, processor) of each step
    released now. A failing release raises and is tried again on the next run (the receipt is unchanged)."""
    with store.session() as s:
        steps = [(step.erasure_id, step.processor, receipt) for step in s.scalars(
            select(ErasureStep).join(Erasure).where(ErasureStep.status == "done").order_by(ErasureStep.id))
            if (receipt := step.receipt or {}).get("kept") and not receipt["kept"].get("released_at")]
    released = []
    for erasure_id, processor, receipt in steps:
        kept = receipt["kept"]
        with store.session() as s:
            if not complaint_hold.ended(s, kept.get("complaint_ids", []), today):
                continue
        result = RELEASE[processor](kept)
        with store.session() as s:
            step = s.scalars(select(ErasureStep).where(ErasureStep.erasure_id == erasure_id,
                                                       ErasureStep.processor == processor)).one()
            step.receipt = {**(step.receipt or {}), "kept": {**kept, "released_at": datetime.now(timezone.utc).isoformat(),
                                                     "released": result}}
            tombstones.add_tombstones(s, erasure_id, **{k: kept[k] for k in TOMBSTONED if kept.get(k)})
            audit.record(s, ACTOR, "erasure.hold_released", erasure_id=erasure_id, processor=processor,
                         complaint_ids=kept.get("complaint_ids", []))
        released.append((erasure_id, processor))
    if released:
        log.info("complaint hold ended: %s erasure step(s) completed", len(released))
    return released


@jobs.periodic(crontab(minute="45", hour="1"))
def release_complaint_holds() -> int:
    """Daily, after the retention sweep: erase what a complaint's hold no longer keeps."""
    return len(release_ended())
