"""The complaint register's staff-filled fields, read from a HappyFox ticket's custom fields or a HubSpot ticket's
properties (both mapped in YAML `complaints.happyfox_fields` / `hubspot_properties`) into typed values, and
written back as the strings the vendors store. Bad input is reported by field name, never echoed (it may be
personal data)."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from typing import Any
from zoneinfo import ZoneInfo

from connectors.records import HappyFoxTicketFields
from core.settings import ComplaintsSpec

BUDAPEST = ZoneInfo("Europe/Budapest")
FIELDS = ("event_type", "person_concerned", "loss_amount_huf", "measure", "measure_due_at", "measure_responsible",
          "outcome", "investigation_ended_at", "reasons", "referral", "measure_checked_at",
          "proposal")
DATES = ("measure_due_at", "investigation_ended_at", "measure_checked_at")
TEXT_MAX = {"person_concerned": 200, "measure_responsible": 200, "measure": 4000, "reasons": 4000,
            "proposal": 4000}
# What staff type for the outcome, in either language, to our two values.
OUTCOMES = {"founded": "founded", "megalapozott": "founded", "alapos": "founded", "jogos": "founded",
            "unfounded": "unfounded", "megalapozatlan": "unfounded", "alaptalan": "unfounded",
            "nem jogos": "unfounded"}
# policy 004 §19: what may follow from the complaint and goes to the managing director, in either language.
REFERRALS = {"damages": "damages", "kártérítés": "damages", "karterites": "damages",
             "authority": "authority", "hatósági": "authority", "hatosagi": "authority",
             "labour": "labour", "labor": "labour", "munkajogi": "labour",
             "criminal": "criminal", "büntetőjogi": "criminal", "buntetojogi": "criminal"}


class BadValue(ValueError):
    """A field's value cannot be read; the message names the field only."""


def parse(name: str, raw: Any, spec: ComplaintsSpec) -> Any:
    """The typed value of field `name`, None for an empty one; BadValue when it cannot be read."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if name == "loss_amount_huf":
        return _amount(raw, name)
    if name in DATES:
        return _moment(raw, name, end_of_day=name == "measure_due_at")
    text = str(raw).strip()
    if name == "referral":
        found = REFERRALS.get(text.lower())
        if found is None:
            raise BadValue(f"{name}: expected damages, authority, labour or criminal")
        return found
    if name == "outcome":
        found = OUTCOMES.get(text.lower())
        if found is None:
            raise BadValue(f"{name}: expected founded or unfounded")
        return found
    if name == "event_type":
        lowered = text.lower()
        for item in spec.event_types:
            if lowered == item.code or lowered in (label.lower() for label in item.label.values()):
                return item.code
        raise BadValue(f"{name}: not one of the configured event types")
    return text[:TEXT_MAX.get(name, 4000)]


def _amount(raw: Any, name: str) -> int:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    else:  # "150 000 Ft", "150.000", "150000,00", "HUF 150,000"
        text = re.sub(r"(?i)huf|ft|\s|\u00a0", "", str(raw))
        text = re.sub(r"[.,]00?$", "", text).replace(".", "").replace(",", "")
        if not text.isdigit():
            raise BadValue(f"{name}: expected a whole number of forints")
        value = float(text)
    if value < 0:
        raise BadValue(f"{name}: must not be negative")
    return int(round(value))


def _moment(raw: Any, name: str, end_of_day: bool) -> datetime:
    """A date (`yyyy-mm-dd`, HappyFox's date fields) is a Budapest day: a deadline runs to its end, an event
    happened at its start; a full timestamp (HubSpot may send epoch milliseconds) is taken as it is."""
    if isinstance(raw, (int, float)) or (isinstance(raw, str) and raw.strip().isdigit()):
        return datetime.fromtimestamp(int(raw) / 1000, timezone.utc)
    text = str(raw).strip().replace("/", "-")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            wall = time(23, 59, 59) if end_of_day else time(0, 0)
            return datetime.combine(day, wall, BUDAPEST).astimezone(timezone.utc)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadValue(f"{name}: expected a date (yyyy-mm-dd)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def render(name: str, value: Any) -> str:
    """A typed value as the vendors store it: dates as the Budapest day, everything else as text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(BUDAPEST).date().isoformat()
    return str(value)


def happyfox_values(ticket: HappyFoxTicketFields, spec: ComplaintsSpec) -> dict[str, Any]:
    """The raw values of the mapped custom fields present on a HappyFox ticket (by id or by name)."""
    found: dict[str, Any] = {}
    for name, wanted in spec.happyfox_fields.items():
        item = ticket.custom_field(wanted)
        if item is not None:
            found[name] = item.value
    return found


def hubspot_field(property_name: str, spec: ComplaintsSpec) -> str | None:
    return next((name for name, prop in spec.hubspot_properties.items() if prop == property_name), None)
