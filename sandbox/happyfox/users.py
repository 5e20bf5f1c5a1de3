"""Contacts ("users", docs/vendors/happyfox.md#contacts): get and update by id or email, search by `q`, create-or-edit
by email. No delete: HappyFox documents none."""
from __future__ import annotations

import json
import re
from typing import Any

from flask import Response, jsonify, request

from ..state import current
from .common import body, bp, custom_values, invalid, not_found, now, page, pick, store

def ticket_counts(state: dict[str, Any], user_ids: set[int]) -> dict[int, tuple[int, int]]:
    """Each user's (tickets, pending tickets), in one pass over the tickets: a page renders many users."""
    pending = {s["id"] for s in state["statuses"] if s["behavior"] == "pending"}
    counts = {user_id: [0, 0] for user_id in user_ids}
    for ticket in state["tickets"].values():
        found = counts.get(ticket["user"])
        if found is not None:
            found[0] += 1
            found[1] += ticket["status"] in pending
    return {user_id: (n, p) for user_id, (n, p) in counts.items()}


def render_user(state: dict[str, Any], user: dict[str, Any],
                counts: dict[int, tuple[int, int]] | None = None) -> dict[str, Any]:
    tickets, pending = (counts or ticket_counts(state, {user["id"]}))[user["id"]]
    phones = user["phones"]
    return {**{k: v for k, v in user.items() if k != "custom_fields"},
            "primary_phone": next((p for p in phones if p.get("is_primary")), phones[0] if phones else None),
            "tickets_count": tickets, "pending_tickets_count": pending, "contact_groups": [],
            "custom_fields": [{"id": f["id"], "name": f["name"], "value": user["custom_fields"].get(str(f["id"])),
                               "value_id": None, "type": f["type"], "visible_to_staff_only": f["visible_to_staff_only"]}
                              for f in state["user_custom_fields"]]}


def _phones(value: Any) -> list[dict[str, Any]]:
    """`phones` as JSON or as a form field holding JSON: `[{"type", "number", "is_primary"}]`."""
    try:
        phones = value if isinstance(value, list) else json.loads(value or "[]")
    except (TypeError, ValueError):
        phones = None
    if not isinstance(phones, list) or not all(isinstance(p, dict) and p.get("number") not in (None, "")
                                               for p in phones):
        raise invalid("phones", "Enter a list of phones, each with a number.")
    return phones


def upsert_user(state: dict[str, Any], data: dict[str, Any], user: dict[str, Any] | None = None,
                stamp: str | None = None) -> dict:
    for field in ("name", "email"):  # a wrong type is a field error, as HappyFox's form validation gives it
        if data.get(field) is not None and not isinstance(data[field], str):
            raise invalid(field, "Enter a valid value.")
    phones = _phones(data["phones"]) if "phones" in data else None  # checked before anything is stored
    email = data.get("email", user["email"] if user else None)
    if user is None:
        if not data.get("name"):
            raise invalid("name")
        if not email and not data.get("phones"):
            raise invalid("email")
        user = next((u for u in state["users"].values() if email and u["email"] == email.lower()), None)
    stamp = stamp or now()
    if user is None:
        user = {"id": current().next_id(), "name": "", "email": None, "phones": [], "created_at": stamp,
                "custom_fields": {}}
        state["users"][user["id"]] = user
    if "name" in data:
        user["name"] = data["name"] or ""
    user["email"] = email.lower() if email else None
    if phones is not None:
        user["phones"] = [{"id": p.get("id") or current().next_id(), "type": p.get("type", "m"),
                           "number": str(p["number"]), "is_primary": bool(p.get("is_primary"))} for p in phones]
    user["custom_fields"].update(custom_values(state, data, ("c-cf-",), "user_custom_fields"))
    user["updated_at"] = stamp
    return user


def user_by_key(state: dict[str, Any], key: str) -> dict[str, Any]:
    users = state["users"]
    user = users.get(int(key)) if key.isdigit() else next(
        (u for u in users.values() if u["email"] == key.lower()), None)
    if user is None:
        raise not_found()
    return user


@bp.get("/user/<key>/")
def get_user(key: str) -> Response:
    with current().lock:
        state = store()
        return jsonify(render_user(state, user_by_key(state, key)))


@bp.post("/user/<key>/")
def update_user(key: str) -> Response:
    with current().lock:
        state = store()
        return jsonify(render_user(state, upsert_user(state, body(), user_by_key(state, key))))


@bp.route("/users/", methods=["GET", "POST"])
def users() -> Response:
    with current().lock:
        state = store()
        if request.method == "POST":
            return jsonify(render_user(state, upsert_user(state, body())))
        found = list(state["users"].values())
        # `field:value` terms, ANDed (docs/vendors/happyfox.md#contacts)
        for term in (request.args.get("q") or "").split():
            field, _, value = term.partition(":")
            value = value.strip('"').lower()
            if field == "email":
                found = [u for u in found if (u["email"] or "") == value]
            elif field == "name":
                found = [u for u in found if value in u["name"].lower()]
            elif field == "phone":
                found = [u for u in found if any(re.sub(r"\D", "", p["number"]) == re.sub(r"\D", "", value)
                                                 for p in u["phones"])]

        def show(users: list[dict[str, Any]]) -> list[dict[str, Any]]:
            counts = ticket_counts(state, {u["id"] for u in users})
            return [render_user(state, u, counts) for u in users]
        return jsonify(page(found, show=show))
