"""What every part of the HappyFox fake shares: the blueprint, the seeded account, request reading, errors (`{"error":
[{"field", "errors"}]}` for validation, `{"error": "..."}` otherwise; docs/vendors/happyfox.md#errors), pagination
(docs/vendors/happyfox.md#pagination) and the routes that answer every unknown or slash-less path with 404."""
from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..state import current
from ..vendor import Refused

API = "/api/1.1/json"
bp = Blueprint("happyfox", __name__, url_prefix=API)


# Ids as config/switchboard.yaml maps them; prepopulate_cc is the display-id prefix
# (docs/vendors/happyfox.md#the-ticket-object).
CATEGORIES = [
    (1, "General question", "GQ"), (2, "Other", "OT"), (3, "Bug report", "BR"), (4, "Billing question", "BQ"),
    (5, "Inquiry", "IN"), (6, "User support", "US"), (7, "Complaint", "CO"), (8, "Data change", "DC"),
    (9, "Information request", "IR")]
STATUSES = [("New", "pending", True), ("Pending", "pending", False), ("On Hold", "pending", False),
            ("In Progress", "pending", False), ("Reopened", "pending", False), ("Solved", "completed", False),
            ("Closed", "completed", False)]
PRIORITIES = [("Low", False), ("Medium", True), ("High", False), ("Critical", False)]
COMPLAINT_FIELDS = [("Complaint event type", "text"), ("Person concerned", "text"), ("Potential loss (HUF)", "number"),
                    ("Measure taken", "text"), ("Measure deadline", "date"), ("Measure responsible", "text"),
                    ("Complaint outcome", "text"), ("Investigation ended", "date"), ("Complaint reasons", "text"),
                    ("Legal consequence", "text"), ("Measure checked", "date"), ("Prevention proposal", "text")]


def invalid(field: str, message: str = "This field is required.") -> Refused:
    return Refused(400, body={"error": [{"field": field, "errors": [message]}]})


def not_found() -> Refused:
    return Refused(404, body={"error": "Cannot find the requested object"})


def error(status: int, text: str) -> Response:
    payload: Any = {"error": [{"field": "__all__", "errors": [text]}]} if status == 400 else {"error": text}
    response = jsonify(payload)
    response.status_code = status
    return response


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def seed(state: dict[str, Any]) -> None:
    state["categories"] = [{"id": i, "name": n, "description": "", "public": True, "prepopulate_cc": p,
                            "time_spent_mandatory": False} for i, n, p in CATEGORIES]
    state["statuses"] = [{"id": i, "name": n, "color": "0066CC", "order": i, "default": d, "behavior": b}
                         for i, (n, b, d) in enumerate(STATUSES, 1)]
    state["priorities"] = [{"id": i, "name": n, "order": i, "default": d} for i, (n, d) in enumerate(PRIORITIES, 1)]
    state["staff"] = [{"id": 1, "name": "Switchboard Agent", "email": "agent@example.com", "is_account_admin": True,
                       "active": True, "role": {"id": 1, "name": "Administrator"}, "categories": list(range(1, 10)),
                       "permissions": ["close_tickets", "delete_tickets"]},
                      {"id": 2, "name": "Panaszkezelő", "email": "panaszkezeles@example.com", "is_account_admin": False,
                       "active": True, "role": {"id": 2, "name": "Agent"}, "categories": list(range(1, 9)),
                       "permissions": ["close_tickets"]}]
    state["ticket_custom_fields"] = [
        {"id": 1, "name": "switchboard_key", "type": "text", "required": False, "compulsory_on_completed": False,
         "compulsory_on_move": False, "visible_to_staff_only": True, "depends_on_choice": None, "choices": None,
         "categories": [{"category": c, "order": 1} for c in range(1, 9)]},
        {"id": 2, "name": "Service area", "type": "text", "required": False, "compulsory_on_completed": False,
         "compulsory_on_move": False, "visible_to_staff_only": False, "depends_on_choice": None, "choices": None,
         "categories": [{"category": c, "order": 2} for c in range(1, 9)]},
        # The complaint register's fields staff fill (config complaints.happyfox_fields), on Complaint (7) only.
        *({"id": i, "name": n, "type": t, "required": False, "compulsory_on_completed": False,
           "compulsory_on_move": False, "visible_to_staff_only": True, "depends_on_choice": None, "choices": None,
           "categories": [{"category": 7, "order": i}]}
          for i, (n, t) in enumerate(COMPLAINT_FIELDS, 3))]
    state["user_custom_fields"] = [
        {"id": 1, "name": "Company", "type": "text", "required": False, "order": 1, "choices": None,
         "depends_on_choice": None, "visible_to_staff_only": False},
        {"id": 2, "name": "HubSpot contact id", "type": "text", "required": False, "order": 2, "choices": None,
         "depends_on_choice": None, "visible_to_staff_only": True}]
    state["tickets"] = {}
    state["users"] = {}


def store() -> dict[str, Any]:
    return current().state["happyfox"]


def body() -> dict[str, Any]:
    """JSON, form-urlencoded or multipart alike (docs/vendors/happyfox.md#base-url-auth-and-formats); form values
    arrive as strings."""
    data = request.get_json(silent=True) if request.is_json else None
    if data is None:
        data = {k: v for k, v in request.form.items()}
    if not isinstance(data, dict):
        raise invalid("__all__", "Expected an object.")
    return data


def as_int(value: Any, field: str, required: bool = True) -> int | None:
    if value in (None, ""):
        if required:
            raise invalid(field)
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(field, "Enter a whole number.") from None


def pick(state: dict[str, Any], kind: str, ident: Any, field: str) -> dict[str, Any]:
    for item in state[kind]:
        if item["id"] == ident:
            return item
    raise invalid(field, "Select a valid choice. That choice is not one of the available choices.")


def custom_values(state: dict[str, Any], data: dict[str, Any], prefixes: tuple[str, ...], kind: str) -> dict:
    values = {}
    for key, value in data.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        if prefix is not None:
            field_id = as_int(key[len(prefix):], key)
            pick(state, kind, field_id, key)
            values[str(field_id)] = value
    return values


def attachments() -> list[dict[str, Any]]:
    files = request.files.getlist("attachments")
    return [{"id": current().next_id(), "filename": f.filename, "content_type": f.mimetype,
             "size": len(f.read())} for f in files]


def page(items: list[Any], show: Callable[[list[Any]], list[Any]] = lambda chunk: chunk) -> dict[str, Any]:
    """`size` (≤ 50) and 1-based `page`, with the documented page_info (docs/vendors/happyfox.md#pagination); `show`
    renders only the page's own items, all at once (what they share is looked up once), so that a page costs
    about the same at 10,000 tickets as at 100."""
    size = as_int(request.args.get("size") or 10, "size")
    number = as_int(request.args.get("page") or 1, "page")
    if not 1 <= size <= 50:
        raise invalid("size", "Ensure this value is less than or equal to 50.")
    chunk = items[(number - 1) * size:number * size]
    start = (number - 1) * size + 1 if chunk else 0
    return {"page_info": {"count": len(chunk), "start_index": start, "end_index": start + len(chunk) - 1 if chunk
                          else 0, "last_index": len(items), "page_count": max(1, math.ceil(len(items) / size))},
            "data": show(chunk)}


@bp.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown_route(unknown: str) -> Response:
    raise not_found()  # unknown routes answer 404 (docs/vendors/happyfox.md#errors)


@bp.before_app_request
def _trailing_slash() -> None:
    # Every documented path ends in "/" (docs/vendors/happyfox.md#base-url-auth-and-formats): answer 404 rather than
    # Flask's redirect, which would hide the bug.
    if request.path.startswith(API + "/") and not request.path.endswith("/"):
        raise not_found()
    return None
