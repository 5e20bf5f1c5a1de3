"""Tickets (docs/vendors/happyfox.md#tickets): create (JSON or multipart), get, list with `q`, staff update, private
note, delete, and the discovery lists (docs/vendors/happyfox.md#discovery-lists). Tickets keep ids to statuses, users
and staff; `render` builds the documented ticket object (docs/vendors/happyfox.md#the-ticket-object), which is also what
the smart-rule webhook posts (docs/vendors/happyfox.md#webhooks)."""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Response, jsonify, request

from ..state import current
from ..emit import notify as send
from .common import as_int, attachments, body, bp, custom_values, invalid, not_found, now, page, pick, store
from .users import render_user, ticket_counts, upsert_user, user_by_key

def ticket_of(state: dict[str, Any], ticket_id: int) -> dict[str, Any]:
    ticket = state["tickets"].get(ticket_id)
    if ticket is None:
        raise not_found()
    return ticket


def render(state: dict[str, Any], ticket: dict[str, Any],
           counts: dict[int, tuple[int, int]] | None = None) -> dict[str, Any]:
    """`counts`: the users' ticket counts when the caller took them for a whole page (`users.ticket_counts`)."""
    staff = {s["id"]: s for s in state["staff"]}
    return {**ticket,
            "status": pick(state, "statuses", ticket["status"], "status"),
            "priority": pick(state, "priorities", ticket["priority"], "priority"),
            "category": pick(state, "categories", ticket["category"], "category"),
            "user": render_user(state, state["users"][ticket["user"]], counts),
            "assigned_to": staff.get(ticket["assigned_to"]),
            "subscribers": [staff[i] for i in ticket.get("subscribers") or [] if i in staff],
            "custom_fields": [{"id": f["id"], "name": f["name"], "value": ticket["custom_fields"].get(str(f["id"])),
                               "value_id": None, "type": f["type"], "compulsory_on_complete": False,
                               "visible_to_staff_only": f["visible_to_staff_only"]}
                              for f in state["ticket_custom_fields"]],
            "messages_count": sum(1 for u in ticket["updates"] if u["message"]),
            "attachments_count": sum(len(u["message"]["attachments"]) for u in ticket["updates"] if u["message"])}


def message(text: str, files: list[dict[str, Any]], private: bool = False) -> dict[str, Any]:
    return {"text": text, "html": text, "subject": "", "cc_list": "", "bcc_list": "", "forward_list": None,
            "message_type": "p" if private else None, "customer_updated": False, "attachments": files}


TERM = re.compile(r'(?:"(?P<qname>[^"]+)"|(?P<name>[\w-]+)):(?P<values>(?:"[^"]*",?)+|[^\s+"]+)')


def matcher(state: dict[str, Any], query: str) -> Callable[[dict[str, Any]], bool]:
    """A test for the `q` filters a sync needs (docs/vendors/happyfox.md#list-and-search-tickets): dates
    `yyyy/mm/dd`, status names, ids, contact, custom field values. The query is read once, not once a ticket:
    a listing at 10,000 tickets tests each of them."""
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for term in TERM.finditer(query):
        name = term["qname"] or term["name"]
        values = [v for v in re.findall(r'"([^"]*)"|([^,"]+)', term["values"]) for v in v if v]
        tests.append(_test(state, name, values))
    return lambda ticket: all(test(ticket) for test in tests)


def _test(state: dict[str, Any], name: str, values: list[str]) -> Callable[[dict[str, Any]], bool]:
    if name.startswith(("last-modified-", "created-")):
        stamp = "last_modified" if name.startswith("last") else "created_at"
        day, op = values[0].replace("/", "-"), name.split("-", 2 if name.startswith("last") else 1)[-1]
        compare: Callable[[str], bool] = {
            "on-or-after": lambda d: d >= day, "on-or-before": lambda d: d <= day, "after": lambda d: d > day,
            "before": lambda d: d < day, "on": lambda d: d == day}.get(op, lambda d: True)
        return lambda ticket: compare(ticket[stamp][:10])
    if name == "status":
        return lambda ticket: pick(state, "statuses", ticket["status"], "q")["name"] in values
    if name == "id":
        return lambda ticket: any(ticket["display_id"].lstrip("#") == v or str(ticket["id"]) == v for v in values)
    if name == "contact":
        emails = [v.lower() for v in values]
        return lambda ticket: state["users"][ticket["user"]]["email"] in emails
    field = next((f for f in state["ticket_custom_fields"] if f["name"] == name), None)
    if field is None:
        return lambda ticket: False
    key = str(field["id"])
    return lambda ticket: str(ticket["custom_fields"].get(key)) in values


@bp.get("/tickets/")
def list_tickets() -> Response:
    with current().lock:
        state = store()
        query, status = request.args.get("q", ""), request.args.get("status")
        # Observed: with `q` and no `status`, only the pending statuses are searched
        # (docs/vendors/happyfox.md#observed-behaviour).
        status = status or ("_pending" if query else "_all")
        found = list(filter(matcher(state, query), state["tickets"].values()))
        if status == "_pending":
            pending = {s["id"] for s in state["statuses"] if s["behavior"] == "pending"}
            found = [t for t in found if t["status"] in pending]
        elif status != "_all":
            found = [t for t in found if t["status"] == as_int(status, "status")]
        categories = [as_int(c, "category") for c in request.args.getlist("category")]
        found = [t for t in found if not categories or t["category"] in categories]
        sort = request.args.get("sort", "")
        if sort.startswith("last_modified"):
            found.sort(key=lambda t: (t["last_modified"], t["id"]), reverse=sort.endswith("d"))
        else:  # by id: stable pages for the fake's default
            found.sort(key=lambda t: t["id"], reverse=sort == "ticketd")

        def show(page_tickets: list[dict[str, Any]]) -> list[dict[str, Any]]:
            counts = ticket_counts(state, {t["user"] for t in page_tickets})
            return [render(state, t, counts) for t in page_tickets]
        return jsonify(page(found, show=show))


@bp.post("/tickets/")
def create_ticket() -> Response:
    sandbox = current()
    with sandbox.lock:
        rendered = render(store(), new_ticket(store(), body(), attachments))
    notify("ticket.created", rendered)
    return jsonify(rendered)  # 200 with the full ticket, not 201 (docs/vendors/happyfox.md#create-a-ticket)


def new_ticket(state: dict[str, Any], data: dict[str, Any], files: Callable[[], list[dict[str, Any]]] = list,
               stamp: str | None = None) -> dict[str, Any]:
    """A ticket made as `POST /tickets/` makes it (its contact created or found by email), stored; `stamp` dates
    it (the control API's seeding: tickets made earlier), else now. The caller holds the lock."""
    sandbox = current()
    for field in ("subject", "category"):
        if not data.get(field):
            raise invalid(field)
    text = data.get("text") or data.get("html")
    if not text:
        raise invalid("text")
    category = pick(state, "categories", as_int(data["category"], "category"), "category")
    priority = as_int(data.get("priority"), "priority", required=False)
    priority = pick(state, "priorities", priority, "priority")["id"] if priority else \
        next(p["id"] for p in state["priorities"] if p["default"])
    fields = custom_values(state, data, ("t-cf-",), "ticket_custom_fields")
    if data.get("client"):
        user = user_by_key(state, str(data["client"]))
    else:
        phone = data.get("phone")
        user = upsert_user(state, {"name": data.get("name"), "email": data.get("email"),
                                   **({"phones": [{"type": "m", "number": phone, "is_primary": True}]}
                                      if phone else {}),
                                   **custom_values(state, data, ("c-cf-",), "user_custom_fields")}, stamp=stamp)
    ticket_id, stamp = sandbox.next_id(), stamp or now()
    ticket = {"id": ticket_id, "display_id": f"#{category['prepopulate_cc']}{ticket_id:08d}",
              "subject": data["subject"], "first_message": text, "status": state["statuses"][0]["id"],
              "priority": priority, "category": category["id"], "user": user["id"],
              "assigned_to": as_int(data.get("assignee"), "assignee", required=False),
              "custom_fields": fields, "tags": data.get("tags") or "", "due_date": None, "time_spent": 0,
              "sla_breaches": 0, "unresponded": True, "visible_only_staff": None, "merged_tickets": [],
              "merged_to": None, "subscribers": [], "source": "TKT_CREATION_API", "created_at": stamp,
              "last_modified": stamp, "last_updated_at": stamp, "last_user_reply_at": stamp,
              "last_staff_reply_at": None,
              "updates": [{"update_id": sandbox.next_id(), "timestamp": stamp,
                           "by": {"id": user["id"], "type": "user", "name": user["name"], "email": user["email"]},
                           "message": message(text, files()), "status_change": None,
                           "priority_change": None, "assignee_change": None, "category_change": None,
                           "due_date_change": None, "custom_field_change": None, "time_spent": 0,
                           "satisfaction_survey": None}]}
    state["tickets"][ticket_id] = ticket
    return ticket


def seed_ticket(state: dict[str, Any], data: dict[str, Any], status: str | None, when: datetime) -> dict[str, Any]:
    """A ticket made `when`, as `POST /tickets/` would have made it then, and moved to `status` (a name) by staff
    at the same moment (the control API's seeding)."""
    stamp = when.strftime("%Y-%m-%d %H:%M:%S")
    ticket = new_ticket(state, data, stamp=stamp)
    if status is not None:
        target = next((s for s in state["statuses"] if s["name"] == status), None)
        if target is None:
            raise invalid("status", f"No status named {status!r}.")
        if target["id"] != ticket["status"]:
            old = pick(state, "statuses", ticket["status"], "status")
            staff = state["staff"][0]
            ticket["updates"].append({
                "update_id": current().next_id(), "timestamp": stamp,
                "by": {"id": staff["id"], "type": "staff", "name": staff["name"], "email": staff["email"]},
                "message": None, "status_change": {"old": old["id"], "new": target["id"], "old_name": old["name"],
                                                   "new_name": target["name"]},
                "priority_change": None, "assignee_change": None, "category_change": None, "due_date_change": None,
                "custom_field_change": None, "time_spent": 0, "satisfaction_survey": None})
            ticket["status"] = target["id"]
    return ticket


def staff_write(ticket_id: int, private: bool) -> Response:
    """`staff_update/` (a customer-visible reply) and `staff_pvtnote/` (message_type "p"), both able to change
    status, priority and custom fields; each appends one update and bumps last_modified
    (docs/vendors/happyfox.md#replies-notes-and-status-changes, docs/vendors/happyfox.md#observed-behaviour)."""
    sandbox = current()
    with sandbox.lock:
        state, data = store(), body()
        ticket = ticket_of(state, ticket_id)
        staff = pick(state, "staff", as_int(data.get("staff"), "staff"), "staff")
        text = data.get("text") or data.get("plaintext") or data.get("html")
        files = attachments()
        update: dict[str, Any] = {"update_id": sandbox.next_id(), "timestamp": now(),
                                  "by": {"id": staff["id"], "type": "staff", "name": staff["name"],
                                         "email": staff["email"]},
                                  "message": message(text, files, private) if text or files else None,
                                  "status_change": None, "priority_change": None, "assignee_change": None,
                                  "category_change": None, "due_date_change": None, "custom_field_change": None,
                                  "time_spent": as_int(data.get("time_spent"), "time_spent", required=False) or 0,
                                  "satisfaction_survey": None}
        if "assignee" in data:  # a staff id, or null to unassign
            new = as_int(data.get("assignee"), "assignee", required=False)
            if new is not None:
                pick(state, "staff", new, "assignee")
            if new != ticket["assigned_to"]:
                update["assignee_change"] = {"old": ticket["assigned_to"], "new": new}
                ticket["assigned_to"] = new
        for field, kind in (("status", "statuses"), ("priority", "priorities")):
            new = as_int(data.get(field), field, required=False)
            if new is not None and new != ticket[field]:
                old = pick(state, kind, ticket[field], field)
                target = pick(state, kind, new, field)
                update[f"{field}_change"] = {"old": old["id"], "new": new, "old_name": old["name"],
                                             "new_name": target["name"]}
                ticket[field] = new
        ticket["custom_fields"].update(custom_values(state, data, ("t-cf-",), "ticket_custom_fields"))
        ticket["updates"].append(update)
        ticket["last_modified"] = ticket["last_updated_at"] = update["timestamp"]
        if not private and update["message"]:
            ticket["last_staff_reply_at"], ticket["unresponded"] = update["timestamp"], False
        rendered = render(state, ticket)
    notify("ticket.updated", rendered)
    return jsonify(rendered)


@bp.post("/ticket/<int:ticket_id>/staff_update/")
def staff_update(ticket_id: int) -> Response:
    return staff_write(ticket_id, private=False)


@bp.post("/ticket/<int:ticket_id>/staff_pvtnote/")
def staff_pvtnote(ticket_id: int) -> Response:
    return staff_write(ticket_id, private=True)


@bp.post("/ticket/<int:ticket_id>/subscribe/")
def subscribe(ticket_id: int) -> Response:
    """`{"data": [staff ids], "staff_id": 1}` (docs/vendors/happyfox.md): the staff become subscribers, each once."""
    with current().lock:
        state, data = store(), body()
        ticket = ticket_of(state, ticket_id)
        staff = pick(state, "staff", as_int(data.get("staff_id"), "staff_id"), "staff_id")
        wanted = data.get("data")
        if not isinstance(wanted, list) or not wanted:
            raise invalid("data", "A list of staff ids is required.")
        for staff_id in wanted:
            member = pick(state, "staff", as_int(staff_id, "data"), "data")
            if member["id"] not in ticket["subscribers"]:
                ticket["subscribers"].append(member["id"])
        return jsonify({"message": f"{staff['name']}: Subscribers added to ticket"})


@bp.get("/ticket/<int:ticket_id>/")
def get_ticket(ticket_id: int) -> Response:
    with current().lock:
        state = store()
        return jsonify(render(state, ticket_of(state, ticket_id)))


@bp.post("/ticket/<int:ticket_id>/delete/")
def delete_ticket(ticket_id: int) -> Response:
    with current().lock:
        state = store()
        ticket = ticket_of(state, ticket_id)
        # `staff_id` here, not `staff` (docs/vendors/happyfox.md#replies-notes-and-status-changes)
        pick(state, "staff", as_int(body().get("staff_id"), "staff_id"), "staff_id")
        del state["tickets"][ticket_id]
        return jsonify({"deleted_ticket": ticket["display_id"]})  # docs/vendors/happyfox.md#delete-a-ticket


def _discovery(kind: str) -> None:
    def listing() -> Response:
        with current().lock:
            return jsonify(store()[kind])  # bare arrays, not paginated (docs/vendors/happyfox.md#discovery-lists)
    bp.add_url_rule(f"/{kind}/", f"list_{kind}", listing)


for _kind in ("categories", "statuses", "priorities", "staff", "ticket_custom_fields", "user_custom_fields"):
    _discovery(_kind)


def notify(event: str, ticket: dict[str, Any]) -> None:
    send("happyfox", event, ticket)
