"""Failures are heard: `raise_alert()` records a failure somebody must act on, once per key, and a huey job
delivers it to every target under `alerts:` in the YAML (mail addresses, generic JSON webhooks that Slack, Teams or
a pager accept).

- Deduplicated: the `alerts` row's key is unique (`inbox.dead:17`); the same failure raised again only counts
  (`raised`), it is not sent again.
- Delivered once per target: one `alert_deliveries` row each, claimed by a conditional UPDATE; a failed delivery
  is retried by huey with back-off and, after that, by the sweep every few minutes, until it is sent. A mail goes
  through `effects.send_once` (SMTP has no idempotency); a webhook carries the alert id in `Idempotency-Key`.
- Never personal data: the detail holds ids, counts, kinds and reasons that are written without personal data
  (flows/inbox.py `reason`), and a string that looks like an address or a phone number is dropped all the same.
  Each alert says where to act: the CLI command and the staff console page.
- Raising never breaks the flow that raises: a failure to record or queue is logged and left to the sweep.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from huey import crontab
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from core import jobs, settings, store
from core.models import Alert, AlertDelivery
from core.settings import AlertTargetSpec

from . import effects, vendors

log = logging.getLogger(__name__)

# What each kind means, in the alert's words (mail subject, webhook text).
TITLES: dict[str, dict[str, str]] = {
    "inbox.dead": {"hu": "Elakadt bejövő esemény", "en": "Inbound event is dead"},
    "erasure.step_failed": {"hu": "Sikertelen törlési lépés", "en": "Erasure step failed"},
    "reconcile.unmended": {"hu": "Az egyeztetés nem tudott javítani", "en": "Reconcile could not mend a ticket"},
    "sla.confirmation": {"hu": "Elmaradt visszaigazolás", "en": "Confirmation deadline missed"},
    "sla.first_response": {"hu": "Első válasz határideje", "en": "First response deadline"},
    "complaint.deadline": {"hu": "Panasz határideje", "en": "Complaint deadline"},
    "request.due": {"hu": "Érintetti kérelem határideje közeleg", "en": "Data-subject request nearly due"},
    "request.overdue": {"hu": "Lejárt érintetti kérelem", "en": "Data-subject request overdue"},
}
STALE_SENDING = timedelta(minutes=5)   # a delivery `sending` this long belonged to a worker that died
SWEEP_AFTER = timedelta(minutes=2)     # a pending or failed delivery this old has lost its job
MAX_ATTEMPTS = 200                     # about a week of the sweep's tries; then it stays failed, visible
_PHONE = re.compile(r"^\+?[\d\s().-]{7,}$")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _clean(value: Any) -> Any:
    """The detail as stored and sent: numbers, booleans and short strings, never an address or a phone number."""
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    text = str(value)[:200]
    if "@" in text or _PHONE.match(text.strip()):
        return "[removed]"
    return text


def title(kind: str, language: str) -> str:
    return TITLES.get(kind, {}).get(language) or kind


def _targets() -> list[AlertTargetSpec]:
    return list(settings.get().config.alerts.targets)


def raise_alert(kind: str, key: str, *, command: str | None = None, page: str | None = None,
                mailed: Iterable[str] = (), **detail: Any) -> int | None:
    """Record the failure `key` and queue its delivery; the new alert's id, or None when it was raised before
    (or could not be recorded). `page`: the staff console path to act on (made absolute with PUBLIC_BASE_URL);
    `mailed`: addresses that got a mail of their own about it already (an SLA alert's), which are skipped."""
    try:
        alert_id = _record(kind, key, command, page, {a.strip().lower() for a in mailed}, _clean(detail))
    except Exception:  # an alert must never break the flow that raised it
        log.exception("alert %s could not be recorded", key)
        return None
    if alert_id is not None:
        log.warning("alert %s raised (%s)", alert_id, kind)
        try:
            deliver_alert(alert_id)
        except Exception:  # the queue is out: the sweep delivers it
            log.warning("alert %s: delivery not queued; the sweep sends it", alert_id)
    return alert_id


def _record(kind: str, key: str, command: str | None, page: str | None, mailed: set[str],
            detail: dict[str, Any]) -> int | None:
    url = settings.get().env.public_base_url.rstrip("/") + page if page else None
    targets = [t for t in _targets() if t.wants(kind) and not (t.email and t.email.strip().lower() in mailed)]
    try:
        with store.session() as s:
            if s.scalar(select(Alert.id).where(Alert.key == key)) is None:
                alert = Alert(key=key, kind=kind, detail=detail, command=command, url=url)
                s.add(alert)
                s.flush()
                s.add_all(AlertDelivery(alert_id=alert.id, target=t.key) for t in targets)
                return alert.id
    except IntegrityError:  # raised at the same moment elsewhere
        pass
    with store.session() as s:
        s.execute(update(Alert).where(Alert.key == key).values(raised=Alert.raised + 1, last_raised_at=_now()))
    return None


# ---------------------------------------------------------------- delivery

class DeliveryFailed(Exception):
    """A target did not take the alert; the reason holds no personal data."""


def body(alert: Alert, language: str) -> dict[str, Any]:
    """What a webhook receives: `text` for Slack and Teams, and the alert's fields for anything else."""
    head = title(alert.kind, language)
    facts = ", ".join(f"{k}: {v}" for k, v in alert.detail.items())
    where = " ".join(part for part in (f"`{alert.command}`" if alert.command else "", alert.url or "") if part)
    return {"text": f"[Switchboard] {head} ({facts})" + (f" - {where}" if where else ""),
            "alert": {"id": alert.id, "key": alert.key, "kind": alert.kind, "title": head, "detail": alert.detail,
                      "command": alert.command, "url": alert.url, "raised": alert.raised,
                      "at": alert.created_at.isoformat()}}


def _send(alert: Alert, delivery_id: int, target: AlertTargetSpec) -> None:
    spec = settings.get().config.alerts
    if target.email:
        effects.send_once(f"alert:{delivery_id}", lambda: vendors.get().mail.send(
            target.email or "", spec.template, spec.language, message_id=f"switchboard.alert-{delivery_id}",
            title=title(alert.kind, spec.language), kind=alert.kind, detail=alert.detail, command=alert.command or "",
            url=alert.url or "", raised=alert.raised, alert_id=alert.id))
        return
    url = target.url()
    if not url:
        raise DeliveryFailed(f"{target.webhook_url_env} is not set")
    try:
        answer = httpx.post(url, json=body(alert, spec.language), timeout=settings.get().config.timeouts_seconds,
                            headers={"Idempotency-Key": f"switchboard-alert-{alert.id}"})
    except httpx.HTTPError as exc:
        raise DeliveryFailed(type(exc).__name__) from None
    if answer.status_code >= 300:
        raise DeliveryFailed(f"HTTP {answer.status_code}")


def _claim(delivery_id: int) -> bool:
    with store.session() as s:
        claimed = s.execute(update(AlertDelivery).where(AlertDelivery.id == delivery_id,
                                                        AlertDelivery.status.in_(("pending", "failed")))
                            .values(status="sending", attempts=AlertDelivery.attempts + 1, updated_at=_now()))
        return store.rowcount(claimed) == 1


def _finish(delivery_id: int, error: str | None) -> None:
    with store.session() as s:
        s.execute(update(AlertDelivery).where(AlertDelivery.id == delivery_id).values(
            status="failed" if error else "sent", last_error=error, sent_at=None if error else _now(),
            updated_at=_now()))


def deliver(alert_id: int) -> dict[str, str]:
    """Send the alert to each target it is not yet sent to; {target key: status}. Raises DeliveryFailed when a
    target refused, after trying every other one, so that the job is retried."""
    by_key = {t.key: t for t in _targets()}
    with store.session() as s:
        alert = s.get(Alert, alert_id)
        if alert is None:
            return {}
        s.expunge(alert)
        deliveries = [(d.id, d.target) for d in s.scalars(select(AlertDelivery).where(
            AlertDelivery.alert_id == alert_id, AlertDelivery.status.in_(("pending", "failed"))))]
    outcome: dict[str, str] = {}
    for delivery_id, target_key in deliveries:
        target = by_key.get(target_key)
        if not _claim(delivery_id):
            continue
        try:
            if target is None:  # removed from the YAML since: nobody to tell
                raise DeliveryFailed("target no longer configured")
            _send(alert, delivery_id, target)
        except Exception as exc:
            why = str(exc) if isinstance(exc, DeliveryFailed) else type(exc).__name__
            _finish(delivery_id, why)
            log.warning("alert %s: delivery %s to %s failed: %s", alert_id, delivery_id, target_key.split(":")[0],
                        why)
            outcome[target_key] = "failed"
            continue
        _finish(delivery_id, None)
        outcome[target_key] = "sent"
    if "failed" in outcome.values():
        raise DeliveryFailed(f"alert {alert_id}: {sum(v == 'failed' for v in outcome.values())} target(s) failed")
    return outcome


@jobs.job
def deliver_alert(alert_id: int) -> dict[str, str]:
    """The job `raise_alert` queues; huey retries it with back-off while a target is down."""
    return deliver(int(alert_id))


@jobs.periodic(crontab(minute="*/5"))
def sweep_alerts() -> int:
    """Deliveries whose job gave up, was lost, or whose worker died: queued again; how many alerts."""
    now = _now()
    with store.session() as s:
        s.execute(update(AlertDelivery).where(AlertDelivery.status == "sending",
                                              AlertDelivery.updated_at < now - STALE_SENDING)
                  .values(status="failed", last_error="WorkerLost", updated_at=now))
        ids = sorted(set(s.scalars(select(AlertDelivery.alert_id).where(
            AlertDelivery.status.in_(("pending", "failed")), AlertDelivery.attempts < MAX_ATTEMPTS,
            or_(AlertDelivery.updated_at < now - SWEEP_AFTER)).limit(200))))
    for alert_id in ids:
        deliver_alert(alert_id)
    return len(ids)


def send_pending() -> tuple[int, int]:
    """Every undelivered alert, delivered here and now (`switchboard alerts send`); (sent, still failing)."""
    with store.session() as s:
        ids = sorted(set(s.scalars(select(AlertDelivery.alert_id).where(
            AlertDelivery.status.in_(("pending", "failed"))))))
    sent = failed = 0
    for alert_id in ids:
        try:
            outcome = deliver(alert_id)
        except DeliveryFailed:
            failed += 1
            continue
        sent += bool(outcome)
    return sent, failed


def listing(limit: int = 50) -> list[dict[str, Any]]:
    """The newest alerts with their deliveries' states (ids and kinds only)."""
    with store.session() as s:
        alerts = s.scalars(select(Alert).order_by(Alert.id.desc()).limit(limit)).all()
        return [{"id": a.id, "kind": a.kind, "key": a.key, "raised": a.raised, "command": a.command, "url": a.url,
                 "deliveries": {d.target.split(":")[0] + f"#{d.id}": d.status for d in a.deliveries}}
                for a in alerts]
