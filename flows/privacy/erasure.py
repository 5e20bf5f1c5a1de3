"""Erasure (policy 002: erasure on request and on withdrawal of consent; docs/policy.md#rights-of-the-data-subject): one
request per person, one step per processor (`flows/privacy/erasure_steps.py`), each step a job retried until it is done, each
with a receipt. A request is complete only when every step is; a failing step stays visible (`switchboard erasure status
ID`) until it passes.

At the request the person's identifiers are tombstoned (salted hashes, `flows/privacy/tombstones.py`), so that no sync flow
copies them back while the steps run or afterwards; the remote ids each step reports are tombstoned as it completes.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update

from core import audit, jobs, store
from core.addresses import mailbox
from core.jobs import crontab
from core.models import Erasure, ErasureStep
from core.progress import Step, quiet
from flows import alerts, identity
from flows.identity import Person
from flows.inbox import is_permanent, reason
from flows.privacy import erasure_steps, tombstones

log = logging.getLogger(__name__)
ACTOR = "erasure"
OPEN = ("pending", "failed")  # an erasure still to finish
RUNNING = "running"
STALE = timedelta(minutes=15)  # longer than a job's longest retry delay: its retry was lost


def _now() -> datetime:
    return datetime.now(timezone.utc)


def request(email: str | None = None, phone: str | None = None, customer_id: int | None = None,
            reason: str = "request", actor: str = "cli") -> int:
    """Open (or find the open) erasure request for the person; its id. A person Switchboard has never seen is
    recorded first, so that every step finds them by the same identities."""
    with store.session() as s:
        if customer_id is not None:
            customer = identity.current(s, customer_id)
        else:
            person = Person(email=mailbox(email) if email else None, phone=phone)  # InvalidAddress: a ValueError
            if not person.known:
                raise ValueError("an erasure needs a valid email address or phone number")
            found = identity.find(s, **person.known)
            customer = found[0] if found else identity.resolve(s, person, ACTOR)
            for other in found[1:]:
                customer = identity.merge(s, customer, other, ACTOR, reason="erasure of one person")
            for system, value in person.known.items():
                customer = identity.add_identity(s, customer, system, value, ACTOR)
        existing = s.scalar(select(Erasure).where(Erasure.customer_id == customer.id,
                                                  Erasure.status.in_(OPEN)))
        if existing is not None:
            return existing.id
        subject = erasure_steps.subject_of(s, customer.id)
        primary = (subject.emails or subject.phones or [f"customer:{customer.id}"])[0]
        erasure = Erasure(customer_id=customer.id, subject_hash=audit.subject_hash(primary), reason=reason)
        erasure.steps = [ErasureStep(processor=name) for name in erasure_steps.ORDER]
        s.add(erasure)
        s.flush()
        # A ticket a complaint holds is not tombstoned: its closure must still reach the register.
        tombstones.add_tombstones(s, erasure.id, **subject.ids,
                                 happyfox_ticket=sorted(set(subject.happyfox_tickets) - set(subject.hold.happyfox_tickets)),
                                 hubspot_ticket=sorted(set(subject.hubspot_tickets) - set(subject.hold.hubspot_tickets)),
                                 hubspot_call=subject.hubspot_calls)
        audit.record(s, actor, "erasure.requested", customer_id=customer.id, erasure_id=erasure.id,
                     reason=reason, subject_hash=erasure.subject_hash)
        return erasure.id


def _claim(erasure_id: int, processor: str) -> ErasureStep | None:
    with store.session() as s:
        claimed = s.execute(update(ErasureStep).where(
            ErasureStep.erasure_id == erasure_id, ErasureStep.processor == processor,
            ErasureStep.status.in_(("pending", "failed"))).values(
            status=RUNNING, attempts=ErasureStep.attempts + 1, updated_at=_now()))
        if store.rowcount(claimed) != 1:
            return None
        return s.scalars(select(ErasureStep).where(ErasureStep.erasure_id == erasure_id,
                                                   ErasureStep.processor == processor)).one()


def _ready_for_last(erasure_id: int) -> bool:
    with store.session() as s:
        statuses = s.scalars(select(ErasureStep.status).where(ErasureStep.erasure_id == erasure_id,
                                                              ErasureStep.processor != erasure_steps.LAST))
        return all(status == "done" for status in statuses)


def run_step(erasure_id: int, processor: str) -> str:
    """Run one step once; its status afterwards (`done`, `failed`, `waiting` for the Switchboard step while a
    processor is not done, `skipped` when done already or running elsewhere). Raises what made it fail."""
    if processor == erasure_steps.LAST and not _ready_for_last(erasure_id):
        return "waiting"
    step = _claim(erasure_id, processor)
    if step is None:
        return "skipped"
    try:
        if processor == erasure_steps.LAST:
            with store.session() as s:
                erasure = s.get(Erasure, erasure_id)
                assert erasure is not None and erasure.customer_id is not None
                subject = erasure_steps.subject_of(s, erasure.customer_id)
                receipt = erasure_steps.erase_switchboard(s, subject, erasure_id)
        else:
            with store.session() as s:
                erasure = s.get(Erasure, erasure_id)
                assert erasure is not None and erasure.customer_id is not None
                subject = erasure_steps.subject_of(s, erasure.customer_id)
            receipt = erasure_steps.PROCESSORS[processor](subject)
    except Exception as exc:
        _finish(erasure_id, processor, "failed", error=reason(exc))
        log.warning("erasure %s: %s step failed: %s", erasure_id, processor, reason(exc))
        raise
    _finish(erasure_id, processor, "done", receipt=receipt)
    return "done"


def _finish(erasure_id: int, processor: str, status: str, receipt: dict[str, Any] | None = None,
            error: str | None = None) -> None:
    with store.session() as s:
        erasure = s.get(Erasure, erasure_id)
        assert erasure is not None
        step = next(step for step in erasure.steps if step.processor == processor)
        step.status, step.updated_at = status, _now()
        if status == "done":
            receipt = {"processor": processor, "at": _now().isoformat(), **(receipt or {})}
            step.receipt, step.last_error = receipt, None
            tombstones.add_tombstones(s, erasure_id, **receipt.get("remote_ids", {}))
            audit.record(s, ACTOR, "erasure.step_done", customer_id=erasure.customer_id, erasure_id=erasure_id,
                         processor=processor, counts=receipt.get("counts", {}))
        else:
            step.last_error = error
            erasure.status = "failed"
        if all(other.status == "done" for other in erasure.steps):
            erasure.status, erasure.completed_at = "done", _now()
            audit.record(s, ACTOR, "erasure.completed", customer_id=erasure.customer_id, erasure_id=erasure_id,
                         subject_hash=erasure.subject_hash)
        elif status == "done" and not any(other.status == "failed" for other in erasure.steps):
            erasure.status = "pending"


def run(erasure_id: int, on_step: Step = quiet) -> str:
    """Every step that is not done, here and now (the CLI's `--now`, tests); the request's status afterwards.
    A failing step does not stop the others; it stays failed, with its reason, for the next run.
    `on_step` hears of each processor as it starts (0 of 1) and when it is done (1 of 1)."""
    done_before = {s["processor"] for s in status(erasure_id)["steps"] if s["status"] == "done"}
    for processor in erasure_steps.ORDER:
        on_step(f"erase {processor}", 0, 1)
        try:
            result = run_step(erasure_id, processor)
        except Exception as exc:  # recorded on the step; the others still run
            result = "failed"
            _alert_failed(erasure_id, processor, exc)
        on_step(f"erase {processor}", int(result == "done" or processor in done_before), 1)
    return str(status(erasure_id)["status"])


def _alert_failed(erasure_id: int, processor: str, exc: BaseException) -> None:
    """A step no retry of this run can mend: the privacy team hears of it once per request and processor."""
    alerts.raise_alert("erasure.step_failed", f"erasure.step_failed:{erasure_id}:{processor}",
                       command=f"switchboard erasure status {erasure_id}", page=f"/staff/erasures/{erasure_id}",
                       erasure_id=erasure_id, processor=processor, reason=reason(exc))


def start(erasure_id: int) -> None:
    """Queue a job for every processor step; the last of them to finish queues Switchboard's own."""
    for processor in erasure_steps.PROCESSORS:
        erasure_step(erasure_id, processor)


@jobs.job(context=True)
def erasure_step(erasure_id: int, processor: str, task: Any = None) -> str:
    try:
        result = run_step(int(erasure_id), processor)
    except Exception as exc:
        if is_permanent(exc) or (task is not None and task.retries == 0):
            _alert_failed(int(erasure_id), processor, exc)
            return "failed"  # stays visible; the sweep and `switchboard erasure retry` try again later
        raise  # huey retries with back-off
    if result == "done" and processor != erasure_steps.LAST and _ready_for_last(int(erasure_id)):
        erasure_step(int(erasure_id), erasure_steps.LAST)
    return result


def retry(erasure_id: int) -> list[str]:
    """Queue the steps that are not done again; their names."""
    with store.session() as s:
        names = list(s.scalars(select(ErasureStep.processor).where(ErasureStep.erasure_id == erasure_id,
                                                                   ErasureStep.status != "done")))
        s.execute(update(ErasureStep).where(ErasureStep.erasure_id == erasure_id, ErasureStep.status == RUNNING)
                  .values(status="failed", last_error="WorkerLost"))
    for name in names:
        if name != erasure_steps.LAST or _ready_for_last(erasure_id):
            erasure_step(erasure_id, name)
    return names


@jobs.periodic(crontab(minute="*/10"))
def sweep_erasures() -> int:
    """Retried until done: steps whose jobs gave up or were lost are queued again."""
    cutoff = _now() - STALE
    with store.session() as s:
        ids = list(s.scalars(select(ErasureStep.erasure_id).join(Erasure).where(
            Erasure.status.in_(OPEN), ErasureStep.status != "done",
            ErasureStep.updated_at < cutoff).distinct()))
    for erasure_id in ids:
        retry(erasure_id)
    return len(ids)


def status(erasure_id: int) -> dict[str, Any]:
    with store.session() as s:
        erasure = s.get(Erasure, erasure_id)
        if erasure is None:
            raise LookupError(f"no erasure {erasure_id}")
        return {"id": erasure.id, "customer_id": erasure.customer_id, "reason": erasure.reason,
                "status": erasure.status, "subject_hash": erasure.subject_hash,
                "requested_at": erasure.requested_at.isoformat(),
                "completed_at": erasure.completed_at.isoformat() if erasure.completed_at else None,
                "steps": [{"processor": step.processor, "status": step.status, "attempts": step.attempts,
                           "last_error": step.last_error, "receipt": step.receipt} for step in erasure.steps]}


def listing(status_filter: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    with store.session() as s:
        query = select(Erasure).order_by(Erasure.id.desc()).limit(limit)
        if status_filter:
            query = query.where(Erasure.status == status_filter)
        return [{"id": e.id, "customer_id": e.customer_id, "reason": e.reason, "status": e.status,
                 "requested_at": e.requested_at.isoformat(),
                 "completed_at": e.completed_at.isoformat() if e.completed_at else None,
                 "steps": {step.processor: step.status for step in e.steps}} for e in s.scalars(query)]
