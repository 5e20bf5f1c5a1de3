"""Retention (policy 002, docs/policy.md#retention): personal data is kept until consent is withdrawn, and at most
`retention.years` after the customer's last activity, or for a contracted customer `retention.contract_years` after the
contract ends, whichever is later. A daily sweep opens an erasure request (`flows/privacy/erasure.py`) for every customer that
is due and not under legal hold.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, jobs, settings, store
from core.jobs import crontab
from core.models import Customer, Erasure
from core.progress import Step, quiet
from flows import identity, inbox, payloads
from flows.privacy import consent, erasure

log = logging.getLogger(__name__)
ACTOR = "retention"


def _now() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- the schedule

def _plus_years(moment: date | datetime, years: int) -> date:
    day = moment.date() if isinstance(moment, datetime) else moment
    later: date = day + relativedelta(years=years)  # 29 February + n years lands on 28 February
    return later


@dataclass
class Due:
    customer_id: int
    due_on: date
    reason: str          # consent_withdrawn | retention
    legal_hold: bool


def due_date(customer: Customer) -> tuple[date, str]:
    """When the customer's data must go, and why."""
    spec = settings.get().config.retention
    if customer.consent_withdrawn_at is not None:
        return customer.consent_withdrawn_at.date(), "consent_withdrawn"
    due = _plus_years(customer.last_activity_at, spec.years)
    if customer.contract_end is not None:
        due = max(due, _plus_years(customer.contract_end, spec.contract_years))
    return due, "retention"


def due_within(days: int = 0, today: date | None = None) -> list[Due]:
    """Live customers whose data is due on or before today + `days` and who have no open erasure."""
    spec = settings.get().config.retention
    today = today or _now().date()
    horizon = today + timedelta(days=days)
    # Cheap first cut in SQL: a contract only makes the date later, so nobody is due whose last activity is
    # younger than `years` before the horizon.
    recent = datetime.combine(horizon - relativedelta(years=spec.years),
                              datetime.min.time(), timezone.utc) + timedelta(days=1)
    found = []
    with store.session() as s:
        open_erasures = select(Erasure.customer_id).where(Erasure.status.in_(erasure.OPEN),
                                                          Erasure.customer_id.is_not(None))
        candidates = s.scalars(select(Customer).where(
            Customer.erased_at.is_(None), Customer.merged_into_id.is_(None),
            Customer.id.not_in(open_erasures),
            (Customer.consent_withdrawn_at.is_not(None)) | (Customer.last_activity_at < recent)
        ).order_by(Customer.id))
        for customer in candidates:
            due_on, reason = due_date(customer)
            if due_on <= horizon:
                found.append(Due(customer.id, due_on, reason, customer.legal_hold))
    return found


def _refresh_contract_end(customer_id: int) -> bool:
    """Read the contract end from the customer's HubSpot contact (HubSpot owns contact properties); whether it
    was read. A customer without a HubSpot contact has no contract there."""
    from flows import vendors
    prop = settings.get().config.retention.contract_end_property
    with store.session() as s:
        contact_id = identity.value_of(s, customer_id, "hubspot")
    if contact_id is None:
        return True
    from connectors.errors import NotFound, VendorError
    try:
        contact = vendors.get().hubspot.get_contact(contact_id, properties=[prop])
    except NotFound:
        return True
    except VendorError:
        return False
    with store.session() as s:
        customer = s.get(Customer, customer_id)
        assert customer is not None
        customer.contract_end = parse_hubspot_date(contact.prop(prop))
    return True


def sweep(today: date | None = None, refresh: bool = True, on_step: Step = quiet) -> list[int]:
    """Open an erasure request for every due customer not under legal hold; the new erasure ids. A customer due
    by age has their contract end re-read from HubSpot first: a contract renewed there keeps them. `on_step`
    counts the due customers looked at."""
    opened = []
    found = due_within(0, today)
    for done, due in enumerate(found):
        on_step("due customers", done, len(found))
        if due.legal_hold:
            continue
        if due.reason == "retention" and refresh:
            if not _refresh_contract_end(due.customer_id):
                log.warning("retention: customer %s skipped this sweep (HubSpot not reachable)", due.customer_id)
                continue
            with store.session() as s:
                customer = s.get(Customer, due.customer_id)
                assert customer is not None
                if due_date(customer)[0] > (today or _now().date()):
                    continue
        opened.append(erasure.request(customer_id=due.customer_id, reason=due.reason, actor=ACTOR))
        erasure.start(opened[-1])
    on_step("due customers", len(found), len(found))
    if opened:
        log.info("retention sweep opened %s erasure request(s)", len(opened))
    return opened


@jobs.periodic(crontab(minute="30", hour="1"))
def retention_sweep() -> int:
    """Daily, at night: open the erasures that are due."""
    return len(sweep())


# ---------------------------------------------------------------- consent and legal hold

def _customer_for(s: Session, email: str | None, phone: str | None, customer_id: int | None) -> Customer | None:
    if customer_id is not None:
        return identity.current(s, customer_id)
    found = identity.find(s, email=email, phone=phone)
    return found[0] if found else None


def withdraw_consent(email: str | None = None, phone: str | None = None, customer_id: int | None = None,
                     actor: str = "cli", at: datetime | None = None) -> int | None:
    """The customer withdrew consent: their data is due now (the next sweep opens the erasure). Their id, or None
    when nobody matches."""
    with store.session() as s:
        customer = _customer_for(s, email, phone, customer_id)
        if customer is None:
            return None
        if customer.consent_withdrawn_at is None:
            customer.consent_withdrawn_at = at or _now()
            withdrawn = consent.withdraw(s, [customer.id, *s.scalars(select(Customer.id).where(
                Customer.merged_into_id == customer.id))], customer.consent_withdrawn_at)
            audit.record(s, actor, "consent.withdrawn", customer_id=customer.id, consents=withdrawn)
        return customer.id


def set_legal_hold(held: bool, email: str | None = None, phone: str | None = None,
                   customer_id: int | None = None, actor: str = "cli") -> int | None:
    with store.session() as s:
        customer = _customer_for(s, email, phone, customer_id)
        if customer is None:
            return None
        customer.legal_hold = held
        audit.record(s, actor, "legal_hold.set" if held else "legal_hold.released", customer_id=customer.id)
        return customer.id


def parse_hubspot_date(value: Any) -> date | None:
    """A HubSpot date property: `YYYY-MM-DD`, or epoch milliseconds at midnight UTC
    (docs/vendors/hubspot.md#event-payload)."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, timezone.utc).date()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _truthy(value: Any) -> bool:
    return str(value or "").strip().lower() not in ("", "false", "no", "0", "none", "null")


def on_contact_property(event: inbox.Event) -> str | None:
    """HubSpot owns contact properties: a contract end or a consent withdrawal set there reaches us here."""
    spec = settings.get().config.retention
    change = payloads.read(event, payloads.HubSpotEvent)
    name, value = change.property_name, change.property_value
    if name not in (spec.contract_end_property, spec.consent_withdrawn_property):
        return None
    with store.session() as s:
        found = identity.find(s, hubspot=str(change.object_id))
        if not found:
            return None
        customer = found[0]
        if name == spec.contract_end_property:
            customer.contract_end = parse_hubspot_date(value)
            audit.record(s, "hubspot", "contract_end.changed", customer_id=customer.id)
            return "contract_end"
        customer_id = customer.id
    if _truthy(value):
        occurred = change.occurred_at
        at = datetime.fromtimestamp(occurred / 1000, timezone.utc) if occurred else None
        withdraw_consent(customer_id=customer_id, actor="hubspot", at=at)
        return "consent_withdrawn"
    return None


def on_admin_withdrawal(event: inbox.Event) -> int | None:
    """`POST /admin/customers/consent-withdrawal` (webhooks/privacy.py) stores the request; this applies it."""
    request = payloads.read(event, payloads.ConsentWithdrawal)
    return withdraw_consent(email=request.email, phone=request.phone, actor="admin", at=event.received_at)
