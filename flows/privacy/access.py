"""Access (policy 002: the right to information and access, an export of all stored data;
docs/policy.md#rights-of-the-data-subject): everything each processor and Switchboard hold about a person, as one JSON
file and one readable HTML page.

Each processor is read the way erasure finds the person (`flows/privacy/erasure_steps.py`), so what an export shows is
what an erasure removes. A processor that cannot be read is named in `errors` and the export is marked incomplete.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from connectors.errors import NotFound
from connectors.records import HappyFoxUser, Record
from core import audit, settings, store
from core.addresses import mailbox
from core.models import Audit, Customer, InboxEvent, PrivacyRequest, Ticket
from core.progress import Step, quiet
from flows import identity, vendors
from flows.inbox import reason
from flows.privacy import consent, erasure_steps
from flows.privacy.erasure_steps import Subject

TEMPLATES = Path(__file__).parent / "templates"
ACTOR = "access"


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _row(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {c.key: _plain(getattr(obj, c.key)) for c in obj.__table__.columns if c.key not in skip}


def _subject(email: str | None, phone: str | None) -> tuple[Subject, list[int]]:
    person = identity.Person(email=mailbox(email) if email else None, phone=phone)  # InvalidAddress: a ValueError
    if not person.known:
        raise ValueError("an export needs a valid email address or phone number")
    with store.session() as s:
        found = identity.find(s, **person.known)
        if not found:
            return Subject([], {k: [v] for k, v in person.known.items()}), []
        subject = erasure_steps.subject_of(s, found[0].id)
        for system, value in person.known.items():
            if value not in subject.ids.get(system, []):
                subject.ids.setdefault(system, []).append(value)
        return subject, subject.customer_ids


def switchboard_part(subject: Subject) -> dict[str, Any]:
    traces, ids = subject.traces(), subject.customer_ids
    with store.session() as s:
        customers = [_row(c) for c in s.scalars(select(Customer).where(Customer.id.in_(ids)))]
        tickets = [_row(t) for t in s.scalars(select(Ticket).where(Ticket.customer_id.in_(ids)))]
        keys = {t["source_key"] for t in tickets}
        events = [_row(e) for e in s.scalars(select(InboxEvent).order_by(InboxEvent.id))
                  if f"inbox:{e.id}" in keys or traces.in_value(e.payload)]
        trail = [_row(a, skip=("detail",)) for a in s.scalars(select(Audit).where(Audit.customer_id.in_(ids))
                                                              .order_by(Audit.id))]
        consents = consent.of(s, ids)
        requests = [_row(r, skip=("source_key",)) for r in s.scalars(
            select(PrivacyRequest).where(PrivacyRequest.customer_id.in_(ids)).order_by(PrivacyRequest.id))]
    # Whether their processing is restricted (GDPR Art. 18) or objected to (Art. 21), said plainly.
    live = [c for c in customers if c["merged_into_id"] is None]
    restricted = next((c for c in live if c["restricted_at"]), None)
    processing = {"restricted": restricted is not None,
                  "restriction": restricted["restriction"] if restricted else None,
                  "since": restricted["restricted_at"] if restricted else None}
    return {"processing": processing, "customers": customers, "identities": subject.ids, "tickets": tickets,
            "inbox_events": events, "audit": trail, "requests": requests, "consents": consents}


def hubspot_part(subject: Subject) -> dict[str, Any]:
    hubspot = vendors.get().hubspot
    contacts = erasure_steps.person_contacts(hubspot, "hubspot", subject)
    tickets, calls = set(subject.hubspot_tickets), set(subject.hubspot_calls)
    for contact_id in contacts:
        tickets |= set(hubspot.associated_ids("contacts", contact_id, "tickets"))
        calls |= set(hubspot.associated_ids("contacts", contact_id, "calls"))
    return {"contacts": [c.raw for c in contacts.values() if c is not None],
            "tickets": _each(hubspot.get_ticket, tickets), "calls": _each(hubspot.get_call, calls)}


def happyfox_part(subject: Subject) -> dict[str, Any]:
    happyfox = vendors.get().happyfox
    users: dict[str, HappyFoxUser] = {}
    for user_id in subject.ids.get("happyfox", []):
        try:
            users[user_id] = happyfox.get_user(user_id)
        except NotFound:
            pass
    for email in subject.emails:
        users.update({str(u.id): u for u in happyfox.search_users(f"email:{email}")})
    tickets = set(subject.happyfox_tickets)
    for email in {*subject.emails, *(u.email.lower() for u in users.values() if u.email)}:
        tickets |= {str(t.id) for t in happyfox.tickets_of_contact(email)}
    return {"contacts": [u.raw for u in users.values()], "tickets": _each(happyfox.get_ticket, tickets)}


def aircall_part(subject: Subject) -> dict[str, Any]:
    contacts, calls = erasure_steps.aircall_records(subject)
    return {"contacts": [c.raw for c in contacts.values()], "calls": [c.raw for c in calls.values()]}


def gmail_part(subject: Subject) -> dict[str, Any]:
    gmail = vendors.get().gmail
    ids: list[str] = []
    for email in subject.emails:
        ids += [i for i in gmail.messages_about(email) if i not in ids]
    return {"messages": [gmail.get_message(i).raw for i in ids]}


def _each(get: Callable[[str], Record], ids: set[str]) -> list[dict[str, Any]]:
    """Each record's whole vendor answer (`raw`): the export hands over all the vendor holds."""
    found = []
    for object_id in sorted(ids, key=lambda i: (len(i), i)):
        try:
            found.append(get(object_id).raw)
        except NotFound:  # archived or deleted meanwhile
            pass
    return found


PARTS: dict[str, Callable[[Subject], dict[str, Any]]] = {
    "switchboard": switchboard_part, "hubspot": hubspot_part, "happyfox": happyfox_part,
    "aircall": aircall_part, "gmail": gmail_part}


@dataclass
class Export:
    data: dict[str, Any]
    json_path: Path
    html_path: Path

    @property
    def complete(self) -> bool:
        return not self.data["errors"]


def gather(email: str | None = None, phone: str | None = None, on_step: Step = quiet) -> dict[str, Any]:
    """Every part; `on_step` hears of each as it starts (0 of 1) and when it was read (1 of 1)."""
    subject, customer_ids = _subject(email, phone)
    data: dict[str, Any] = {"generated_at": datetime.now(timezone.utc).isoformat(),
                            "subject": {"emails": subject.emails, "phones": subject.phones},
                            "customer_ids": customer_ids, "errors": {}}
    for name, part in PARTS.items():
        on_step(f"read {name}", 0, 1)
        try:
            data[name] = part(subject)
        except Exception as exc:  # the others are still exported; the gap is named
            data[name] = None
            data["errors"][name] = reason(exc)
        else:
            on_step(f"read {name}", 1, 1)
    return data


def export(email: str | None = None, phone: str | None = None, out_dir: Path | str | None = None,
           actor: str = "cli", on_step: Step = quiet) -> Export:
    """Write the export; the files. Audited with the subject's hash only. `on_step`: see `gather`, then the
    files written (0 to 2)."""
    data = gather(email, phone, on_step)
    out = Path(out_dir) if out_dir else settings.data_dir() / "exports"
    out.mkdir(parents=True, exist_ok=True)
    primary = (data["subject"]["emails"] or data["subject"]["phones"])[0]
    stem = f"access-{audit.subject_hash(primary)[:12]}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    json_path, html_path = out / f"{stem}.json", out / f"{stem}.html"
    on_step("write JSON and HTML", 0, 2)
    json_path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    on_step("write JSON and HTML", 1, 2)
    html_path.write_text(render_html(data), encoding="utf-8")
    on_step("write JSON and HTML", 2, 2)
    with store.session() as s:
        audit.record(s, actor, "access.exported", customer_id=(data["customer_ids"] or [None])[0],
                     subject_hash=audit.subject_hash(primary), complete=not data["errors"])
    return Export(data, json_path, html_path)


def _label(key: Any) -> str:
    return re.sub(r"[_-]+", " ", str(key)).strip().capitalize()


def render_html(data: dict[str, Any]) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["label"] = _label
    return env.get_template("export.html").render(data=data, parts=list(PARTS))
