"""What the console page (`GET /` of the sandbox, `templates/console.html`) shows: each fake's objects as table rows
of plain strings, newest first, and the counts for the summary line. Read-only: it only reads a snapshot.

The fakes keep vendor-shaped dicts (`GET /_sandbox/state` shows them raw); this module picks the few fields a person
looks for, so a missing fake or field shows as empty, never as an error.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from .state import Sandbox

LOG_LINES = 40


def when(value: Any) -> str:
    """Any of the fakes' times (ISO-8601, "YYYY-MM-DD HH:MM:SS", epoch seconds or ms, an RFC 2822 Date header)
    as "YYYY-MM-DD HH:MM:SS" UTC; what cannot be read is shown as given."""
    if value in (None, ""):
        return ""
    try:
        if isinstance(value, (int, float)) or str(value).isdigit():
            seconds = int(value) / (1000 if int(value) > 10**11 else 1)
            moment = datetime.fromtimestamp(seconds, timezone.utc)
        elif "," in str(value):
            moment = parsedate_to_datetime(str(value))
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, TypeError, OverflowError):
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def pretty_json(value: Any) -> str:
    """Raw JSON for the page's `<details>`: Unicode as text (the template escapes it as HTML)."""
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)


def _newest_first(objects: dict[str, Any] | list[Any]) -> list[dict[str, Any]]:
    items = list(objects.values()) if isinstance(objects, dict) else list(objects)
    return sorted((i for i in items if isinstance(i, dict)), key=_id_order, reverse=True)


def _id_order(item: dict[str, Any]) -> int:
    """The fakes' ids count up across the sandbox, so the highest id is the newest object."""
    text = str(item.get("id", ""))
    return int(text) if text.isdigit() else 0


def _joined(*parts: Any) -> str:
    return " ".join(str(p) for p in parts if p)


def _linked(hubspot: dict[str, Any], kind: str, object_id: str, other: str) -> list[str]:
    """Ids of `other` objects associated with a HubSpot object (associations are stored once, either way)."""
    found = []
    for link in hubspot.get("associations", []):
        ends = [tuple(map(str, link.get("from", ()))), tuple(map(str, link.get("to", ())))]
        if (kind, object_id) in ends:
            found += [end[1] for end in ends if end[0] == other]
    return found


def _contact_label(hubspot: dict[str, Any], contact_id: str) -> str:
    properties = hubspot.get("contacts", {}).get(contact_id, {}).get("properties", {})
    return properties.get("email") or _joined(properties.get("lastname"), properties.get("firstname")) \
        or properties.get("phone") or f"#{contact_id}"


def hubspot_rows(hubspot: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    stages = {s["id"]: s.get("label", s["id"]) for p in hubspot.get("pipelines", {}).get("tickets", [])
              for s in p.get("stages", [])}
    contacts = [{"id": c["id"], "name": _joined(p.get("lastname"), p.get("firstname")), "email": p.get("email", ""),
                 "phone": p.get("phone", ""), "created": when(c.get("createdAt")), "archived": c.get("archived")}
                for c in _newest_first(hubspot.get("contacts", {})) for p in [c.get("properties", {})]]
    tickets = [{"id": t["id"], "subject": p.get("subject", ""),
                "stage": stages.get(p.get("hs_pipeline_stage"), p.get("hs_pipeline_stage", "")),
                "category": p.get("hs_ticket_category", ""), "created": when(t.get("createdAt")),
                "contacts": ", ".join(_contact_label(hubspot, c) for c in _linked(hubspot, "tickets", t["id"],
                                                                                   "contacts")),
                "archived": t.get("archived")}
               for t in _newest_first(hubspot.get("tickets", {})) for p in [t.get("properties", {})]]
    calls = [{"id": c["id"], "title": p.get("hs_call_title", ""), "direction": p.get("hs_call_direction", ""),
              "number": p.get("hs_call_from_number", ""), "status": p.get("hs_call_status", ""),
              "seconds": int(p["hs_call_duration"]) // 1000 if str(p.get("hs_call_duration", "")).isdigit() else "",
              "time": when(p.get("hs_timestamp")), "body": re.sub(r"<br\s*/?>", "\n", p.get("hs_call_body", "")),
              "contacts": ", ".join(_contact_label(hubspot, c) for c in _linked(hubspot, "calls", c["id"],
                                                                                 "contacts"))}
             for c in _newest_first(hubspot.get("calls", {})) for p in [c.get("properties", {})]]
    return {"contacts": contacts, "tickets": tickets, "calls": calls}


def happyfox_rows(happyfox: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    statuses = {s["id"]: s for s in happyfox.get("statuses", [])}
    categories = {c["id"]: c.get("name", c["id"]) for c in happyfox.get("categories", [])}
    users = happyfox.get("users", {})
    tickets = []
    for t in _newest_first(happyfox.get("tickets", {})):
        status, user = statuses.get(t.get("status"), {}), users.get(str(t.get("user")), {})
        tickets.append({"id": t["id"], "display_id": t.get("display_id", t["id"]), "subject": t.get("subject", ""),
                        "status": status.get("name", t.get("status")),
                        "closed": status.get("behavior") == "completed",
                        "category": categories.get(t.get("category"), t.get("category", "")),
                        "user_name": user.get("name", ""), "user_email": user.get("email") or "",
                        "created": when(t.get("created_at")), "updated": when(t.get("last_modified"))})
    user_rows = [{"id": u["id"], "name": u.get("name", ""), "email": u.get("email") or "",
                  "phones": ", ".join(p.get("number", "") for p in u.get("phones", [])),
                  "created": when(u.get("created_at"))} for u in _newest_first(users)]
    return {"tickets": tickets, "users": user_rows}


def aircall_rows(aircall: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    calls = [{"id": c["id"], "direction": c.get("direction", ""), "number": c.get("raw_digits", ""),
              "status": _joined(c.get("status"), c.get("missed_call_reason") and f"({c['missed_call_reason']})"),
              "seconds": c.get("duration", ""), "started": when(c.get("started_at")),
              "agent": (c.get("user") or {}).get("name", ""),
              "contact": _joined((c.get("contact") or {}).get("first_name"), (c.get("contact") or {}).get("last_name")),
              "recording": c.get("recording") or c.get("voicemail") or ""}
             for c in _newest_first(aircall.get("calls", {}))]
    contacts = [{"id": c["id"], "name": _joined(c.get("first_name"), c.get("last_name")),
                 "company": c.get("company_name") or "",
                 "phones": ", ".join(p.get("value", "") for p in c.get("phone_numbers", [])),
                 "emails": ", ".join(e.get("value", "") for e in c.get("emails", [])),
                 "created": when(c.get("created_at"))} for c in _newest_first(aircall.get("contacts", {}))]
    return {"calls": calls, "contacts": contacts}


def gmail_rows(gmail: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    rows = []
    for m in gmail.get("messages", {}).values():
        headers = {h.get("name", "").lower(): h.get("value", "") for h in m.get("payload", {}).get("headers", [])}
        rows.append({"id": m.get("id", ""), "from": headers.get("from", ""), "to": headers.get("to", ""),
                     "subject": headers.get("subject", ""), "time": when(m.get("internalDate")),
                     "sort": int(m.get("internalDate") or 0), "snippet": m.get("snippet", ""),
                     "labels": ", ".join(m.get("labelIds", []))})
    return {"messages": sorted(rows, key=lambda r: r["sort"], reverse=True)}


def mail_rows(mail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"from": m.get("from", ""), "to": ", ".join(m.get("to", [])), "subject": m.get("subject", ""),
             "time": when(m.get("headers", {}).get("Date")), "text": m.get("text", "")} for m in reversed(mail)]


def context(sandbox: Sandbox) -> dict[str, Any]:
    """Everything the template shows, read under the lock once."""
    with sandbox.lock:
        state, mail = sandbox.snapshot(), list(sandbox.mail)
        log = [{**c, "time": when(c.get("time"))} for c in reversed(sandbox.calls[-LOG_LINES:])]
    hubspot = hubspot_rows(state.get("hubspot", {}))
    happyfox = happyfox_rows(state.get("happyfox", {}))
    aircall = aircall_rows(state.get("aircall", {}))
    gmail = gmail_rows(state.get("gmail", {}))
    mails = mail_rows(mail)
    counts = [("HubSpot contacts", "hubspot-contacts", len(hubspot["contacts"])),
              ("HubSpot tickets", "hubspot-tickets", len(hubspot["tickets"])),
              ("HubSpot calls", "hubspot-calls", len(hubspot["calls"])),
              ("HappyFox tickets", "happyfox-tickets", len(happyfox["tickets"])),
              ("HappyFox users", "happyfox-users", len(happyfox["users"])),
              ("Aircall calls", "aircall-calls", len(aircall["calls"])),
              ("Aircall contacts", "aircall-contacts", len(aircall["contacts"])),
              ("Gmail messages", "gmail-messages", len(gmail["messages"])),
              ("Mail sent", "mail", len(mails))]
    return {"state": state, "hubspot": hubspot, "happyfox": happyfox, "aircall": aircall, "gmail": gmail,
            "mail": mails, "log": log, "counts": counts}
