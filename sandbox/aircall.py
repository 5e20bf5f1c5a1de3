"""A stateful fake of the Aircall public API v1 (`/v1/...`), shaped by docs/vendors/aircall.md.

Basic auth api_id:api_token, no header 401 and bad credentials 403 with the AWS edge's `{"message"}` body
(docs/vendors/aircall.md#auth); 60 requests a minute per company with the `X-AircallApi-*` headers on every answer,
reset in Unix seconds (docs/vendors/aircall.md#rate-limits); `{"<resource>": [...], "meta": {...}}` pagination,
`per_page` at most 50 (docs/vendors/aircall.md#pagination-and-errors); calls (docs/vendors/aircall.md#calls),
contacts with update by POST (docs/vendors/aircall.md#contacts) and the webhook envelope `{resource, event,
timestamp, token, data}` (docs/vendors/aircall.md#webhooks). Calls are made by `simulate_call` (or
`POST /_sandbox/aircall/calls`), which also sends the call webhooks, as Aircall does.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import math
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import httpx
from flask import Blueprint, Request, Response, has_request_context, jsonify, request

from .emit import emit_now
from .state import Sandbox, current
from .vendor import Refused, Vendor

bp = Blueprint("aircall", __name__)
PUBLIC = "https://api.aircall.io"
MAX_PER_PAGE = 50
LIMIT = (60, 60)  # 60/min is the safe floor of the documented 60-120 (docs/vendors/aircall.md#rate-limits)


def error(status: int, message: str) -> Response:
    # The edge answers {"message"}; the application {"error", "troubleshoot"} (guessed,
    # docs/vendors/aircall.md#pagination-and-errors); give both shapes where the application speaks so that a client
    # reading either finds the words.
    if status in (401, 403, 429):
        body: dict[str, Any] = {"message": message}
    else:
        body = {"error": message, "troubleshoot": "See https://developer.aircall.io/api-references/"}
    response = jsonify(body)
    response.status_code = status
    return response


def _limit_headers(remaining: int, reset_in: float) -> dict[str, str]:
    requests, _ = _current_limit()
    return {"X-AircallApi-Limit": str(requests), "X-AircallApi-Remaining": str(max(0, remaining)),
            "X-AircallApi-Reset": str(math.ceil(time.time() + max(0.0, reset_in)))}


def _current_limit() -> tuple[int, float]:
    return current().limits.get("aircall", LIMIT)


def rate_limited(wait: float) -> Response:
    response = error(429, "Too Many Requests")
    response.headers.update(_limit_headers(0, wait))
    return response


@bp.after_request
def _rate_headers(response: Response) -> Response:
    """The three headers on every answer (the reference says "when reached"; a client must cope with both;
    docs/vendors/aircall.md#rate-limits)."""
    if "X-AircallApi-Limit" not in response.headers and request.path.startswith("/v1/"):
        sandbox = current()
        requests, per_seconds = _current_limit()
        with sandbox.lock:
            window = list(sandbox._windows.get("aircall", ()))
        now = time.monotonic()
        used = [t for t in window if t > now - per_seconds]
        reset_in = (used[0] + per_seconds - now) if used else per_seconds
        response.headers.update(_limit_headers(requests - len(used), reset_in))
    return response


def authenticate(req: Request, creds: dict[str, str]) -> Response | None:
    header = req.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return error(401, "Unauthorized")
    try:
        api_id, _, api_token = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return error(403, "Forbidden")
    good = (hmac.compare_digest(api_id.encode(), creds["aircall_api_id"].encode())
            and hmac.compare_digest(api_token.encode(), creds["aircall_api_token"].encode()))
    return None if good else error(403, "Forbidden")


def iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


USER_ID, NUMBER_ID = 456789, 123456


def seed(state: dict[str, Any]) -> None:
    created = iso(time.time())
    state["users"] = {USER_ID: {"id": USER_ID, "direct_link": f"{PUBLIC}/v1/users/{USER_ID}", "name": "Anna Agent",
                                "email": "agent@example.com", "available": True,
                                "availability_status": "available", "created_at": created,
                                "time_zone": "Europe/Budapest", "language": "hu-HU"}}
    state["numbers"] = {NUMBER_ID: {"id": NUMBER_ID, "direct_link": f"{PUBLIC}/v1/numbers/{NUMBER_ID}",
                                    "name": "Support HU", "digits": "+36 1 234 5678", "e164_digits": "+3612345678",
                                    "country": "HU", "time_zone": "Europe/Budapest", "open": True,
                                    "availability_status": "open", "is_ivr": False,
                                    "live_recording_activated": True, "created_at": created}}
    state["calls"] = {}
    state["contacts"] = {}
    state["tags"] = {n: {"id": n, "direct_link": f"{PUBLIC}/v1/tags/{n}", "name": name, "color": color,
                         "description": None}
                     for n, name, color in ((60692, "Callback Request", "#00B388"), (60693, "Refund", "#FF9E1B"),
                                            (60694, "Complaint", "#E5493A"))}


# ---------------------------------------------------------------- helpers

def _state() -> dict[str, Any]:
    return current().state["aircall"]


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone or "")


def _int_arg(name: str, default: int | None = None) -> int | None:
    value = request.args.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise Refused(400, f"{name} must be an integer") from None


def _page(resource: str, items: list[dict[str, Any]]) -> Response:
    """`page` from 1, `per_page` default 20 max 50, `meta` with the six documented keys
    (docs/vendors/aircall.md#pagination-and-errors)."""
    page = max(1, _int_arg("page", 1) or 1)
    per_page = min(MAX_PER_PAGE, max(1, _int_arg("per_page", 20) or 20))
    if request.args.get("order", "asc") == "desc":
        items = list(reversed(items))
    chunk = items[(page - 1) * per_page: page * per_page]

    def link(n: int) -> str:
        args = {**request.args.to_dict(), "page": n, "per_page": per_page}
        return f"{request.host_url.rstrip('/')}{request.path}?{urlencode(args)}"

    meta = {"count": len(chunk), "total": len(items), "current_page": page, "per_page": per_page,
            "next_page_link": link(page + 1) if page * per_page < len(items) else None,
            "previous_page_link": link(page - 1) if page > 1 else None}
    return jsonify({resource: chunk, "meta": meta})


def _call_view(call: dict[str, Any]) -> dict[str, Any]:
    # `contact` is only filled with fetch_contact=true (docs/vendors/aircall.md#calls).
    if request.args.get("fetch_contact") == "true":
        return call
    return {**call, "contact": None}


def _contact(contact_id: int) -> dict[str, Any]:
    contact: dict[str, Any] | None = _state()["contacts"].get(contact_id)
    if contact is None:
        raise Refused(404, "Contact not found")
    return contact


def _call(call_id: int) -> dict[str, Any]:
    call: dict[str, Any] | None = _state()["calls"].get(call_id)
    if call is None:
        raise Refused(404, "Call not found")
    return call


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused(400, "Body must be a JSON object")
    return body


def _details(values: Any, field: str, sandbox: Sandbox) -> list[dict[str, Any]]:
    if not isinstance(values, list) or len(values) > 20 or not all(
            isinstance(v, dict) and isinstance(v.get("value"), str) for v in values):
        raise Refused(400, f"{field} must be a list of at most 20 {{label, value}} objects")
    return [{"id": sandbox.next_id(), "label": v.get("label") or "Other", "value": v["value"]} for v in values]


# ---------------------------------------------------------------- calls

@bp.get("/v1/calls")
def list_calls() -> Response:
    start, end = _int_arg("from"), _int_arg("to")
    with current().lock:
        calls = sorted(_state()["calls"].values(), key=lambda c: (c["started_at"], c["id"]))
    calls = [_call_view(c) for c in calls
             if (start is None or c["started_at"] >= start) and (end is None or c["started_at"] <= end)]
    return _page("calls", calls)


@bp.get("/v1/calls/search")
def search_calls() -> Response:
    """`/v1/calls` (docs/vendors/aircall.md#calls) narrowed by `direction`, `user_id`, `phone_number` and `tags[]`, with
    the same paging and `from`/`to`. `phone_number` is compared with `raw_digits` in E.164 (the number Aircall stores,
    written with spaces), so a national spelling finds nothing."""
    start, end = _int_arg("from"), _int_arg("to")
    direction, user_id = request.args.get("direction"), _int_arg("user_id")
    phone = _digits(request.args.get("phone_number", ""))
    tags = set(request.args.getlist("tags[]"))
    with current().lock:
        calls = sorted(_state()["calls"].values(), key=lambda c: (c["started_at"], c["id"]))
    found = [_call_view(c) for c in calls
             if (start is None or c["started_at"] >= start) and (end is None or c["started_at"] <= end)
             and (not direction or c["direction"] == direction)
             and (user_id is None or (c.get("user") or {}).get("id") == user_id)
             and (not phone or _digits(c.get("raw_digits", "")) == phone)
             and (not tags or tags & {str(t.get("name", t.get("id"))) if isinstance(t, dict) else str(t)
                                      for t in c.get("tags") or []})]
    return _page("calls", found)


@bp.put("/v1/calls/<int:call_id>/archive")
def archive_call(call_id: int) -> Response:
    """The call leaves the active history and answers itself; archiving twice is allowed (seen-in-code,
    docs/vendors/aircall.md#calls)."""
    with current().lock:
        call = _call(call_id)
        call["archived"] = True
    return jsonify(call=_call_view(call))


@bp.get("/v1/calls/<int:call_id>")
def get_call(call_id: int) -> Response:
    return jsonify(call=_call_view(_call(call_id)))


def _delete_asset(call_id: int, asset: str) -> tuple[str, int]:
    # "If it is not present, it will not be deleted" (docs/vendors/aircall.md#calls): a missing asset answers 404.
    with current().lock:
        call = _call(call_id)
        if not call.get(asset):
            raise Refused(404, f"No {asset} for this call")
        call[asset] = None
        if not call.get("recording") and not call.get("voicemail"):
            call["asset"] = None
    return "", 204


@bp.delete("/v1/calls/<int:call_id>/recording")
def delete_recording(call_id: int) -> tuple[str, int]:
    return _delete_asset(call_id, "recording")


@bp.delete("/v1/calls/<int:call_id>/voicemail")
def delete_voicemail(call_id: int) -> tuple[str, int]:
    return _delete_asset(call_id, "voicemail")


def _annotated(call_id: int, event: str, change: Any) -> Response:
    """Apply `change` to the call, then send `event` with the whole call, as Aircall does (docs/vendors/aircall.md#tags-and-comments)."""
    sandbox = current()
    with sandbox.lock:
        call = _call(call_id)
        change(call)
        data = dict(call)
    if sandbox.webhook_url:
        _send_in_order(sandbox, sandbox.webhook_url, [(event, data)])
    return Response(status=204)


@bp.post("/v1/calls/<int:call_id>/tags")
def tag_call(call_id: int) -> Response:
    """`{"tags": [tag ids]}` adds the company's tags to the call, each once, and sends `call.tagged`
    (docs/vendors/aircall.md#tags-and-comments; the answer's shape is guessed)."""
    wanted = _body().get("tags")
    if not isinstance(wanted, list) or not wanted or not all(isinstance(t, int) for t in wanted):
        raise Refused(400, "tags must be a list of tag ids")
    known = _state()["tags"]
    if any(t not in known for t in wanted):
        raise Refused(404, "Tag not found")

    def change(call: dict[str, Any]) -> None:
        have = {t["id"] for t in call["tags"]}
        call["tags"] += [{"id": t, "name": known[t]["name"], "tagged_by": None, "tagged_at": int(time.time())}
                         for t in wanted if t not in have]
    return _annotated(call_id, "call.tagged", change)


@bp.post("/v1/calls/<int:call_id>/comments")
def comment_call(call_id: int) -> Response:
    """`{"content"}` adds an agent's note and sends `call.commented` (docs/vendors/aircall.md#tags-and-comments; the
    answer's shape is guessed)."""
    content = _body().get("content")
    if not isinstance(content, str) or not content.strip():
        raise Refused(400, "content is required")
    sandbox = current()
    with sandbox.lock:
        comment_id = sandbox.next_id()
    user = dict(_state()["users"][USER_ID])

    def change(call: dict[str, Any]) -> None:
        call["comments"].append({"id": comment_id, "content": content, "posted_by": user,
                                 "posted_at": int(time.time())})
    return _annotated(call_id, "call.commented", change)


@bp.get("/v1/tags")
def list_tags() -> Response:
    with current().lock:
        tags = sorted(_state()["tags"].values(), key=lambda t: t["id"])
    return _page("tags", tags)


# ---------------------------------------------------------------- contacts

@bp.get("/v1/contacts/search")
def search_contacts() -> Response:
    """Only `phone_number` and `email` filter (both given: both must match; docs/vendors/aircall.md#contacts)."""
    email = (request.args.get("email") or "").strip().lower()
    phone = _digits(request.args.get("phone_number", ""))
    with current().lock:
        contacts = sorted(_state()["contacts"].values(), key=lambda c: c["id"])
    found = [c for c in contacts
             if (not email or any(e["value"].lower() == email for e in c["emails"]))
             and (not phone or any(_digits(p["value"]) == phone for p in c["phone_numbers"]))]
    return _page("contacts", found)


@bp.post("/v1/contacts")
def create_contact() -> tuple[Response, int]:
    body, sandbox = _body(), current()
    if not body.get("phone_numbers"):
        raise Refused(400, "phone_numbers is mandatory")  # docs/vendors/aircall.md#contacts
    with sandbox.lock:
        contact_id, now = sandbox.next_id(), iso(time.time())
        contact = {"id": contact_id, "direct_link": f"{PUBLIC}/v1/contacts/{contact_id}",
                   "first_name": body.get("first_name"), "last_name": body.get("last_name"),
                   "company_name": body.get("company_name"), "description": None,
                   "information": body.get("information"), "is_shared": body.get("is_shared", True),
                   "created_at": now, "updated_at": now,
                   "phone_numbers": _details(body["phone_numbers"], "phone_numbers", sandbox),
                   "emails": _details(body.get("emails") or [], "emails", sandbox)}
        _state()["contacts"][contact_id] = contact
    return jsonify(contact=contact), 201


@bp.get("/v1/contacts/<int:contact_id>")
def get_contact(contact_id: int) -> Response:
    return jsonify(contact=_contact(contact_id))


@bp.post("/v1/contacts/<int:contact_id>")
def update_contact(contact_id: int) -> Response:
    """Update is a POST, and only the scalar fields change (docs/vendors/aircall.md#contacts)."""
    body = _body()
    with current().lock:
        contact = _contact(contact_id)
        for key in ("first_name", "last_name", "company_name", "information"):
            if key in body:
                contact[key] = body[key]
        contact["updated_at"] = iso(time.time())
    return jsonify(contact=contact)


@bp.delete("/v1/contacts/<int:contact_id>")
def delete_contact(contact_id: int) -> tuple[str, int]:
    with current().lock:
        _contact(contact_id)
        del _state()["contacts"][contact_id]
        # A deleted contact's details are not kept on its calls (Aircall documents nothing here; our guess,
        # docs/vendors/aircall.md#deletion): the calls show no contact afterwards, as for an unknown number.
        for call in _state()["calls"].values():
            if (call.get("contact") or {}).get("id") == contact_id:
                call["contact"] = None
    return "", 204


# A contact's phone numbers and emails are sub-resources; the contact update takes scalars only
# (docs/vendors/aircall.md#contacts). Answers: the whole contact (shape and status codes guessed).
DETAIL_FIELDS = {"phone_details": "phone_numbers", "email_details": "emails"}


def _detail_body() -> dict[str, Any]:
    body = _body()
    value = body.get("value")
    if not isinstance(value, str) or not value.strip():
        raise Refused(400, "value is required")
    if "label" in body and not isinstance(body["label"], str):
        raise Refused(400, "label must be a string")
    return body


def _detail(contact: dict[str, Any], field: str, detail_id: int) -> dict[str, Any]:
    found: dict[str, Any] | None = next((d for d in contact[field] if d["id"] == detail_id), None)
    if found is None:
        raise Refused(404, "Detail not found")
    return found


@bp.post("/v1/contacts/<int:contact_id>/<any(phone_details, email_details):kind>")
def add_detail(contact_id: int, kind: str) -> tuple[Response, int]:
    body, sandbox = _detail_body(), current()
    with sandbox.lock:
        contact = _contact(contact_id)
        field = DETAIL_FIELDS[kind]
        if len(contact[field]) >= 20:
            raise Refused(400, f"{field} holds at most 20 values")
        contact[field].append({"id": sandbox.next_id(), "label": body.get("label") or "Other",
                               "value": body["value"]})
        contact["updated_at"] = iso(time.time())
    return jsonify(contact=contact), 201


@bp.put("/v1/contacts/<int:contact_id>/<any(phone_details, email_details):kind>/<int:detail_id>")
def update_detail(contact_id: int, kind: str, detail_id: int) -> Response:
    body = _detail_body()
    with current().lock:
        contact = _contact(contact_id)
        detail = _detail(contact, DETAIL_FIELDS[kind], detail_id)
        detail["value"] = body["value"]
        if body.get("label"):
            detail["label"] = body["label"]
        contact["updated_at"] = iso(time.time())
    return jsonify(contact=contact)


@bp.delete("/v1/contacts/<int:contact_id>/<any(phone_details, email_details):kind>/<int:detail_id>")
def delete_detail(contact_id: int, kind: str, detail_id: int) -> tuple[str, int]:
    with current().lock:
        contact = _contact(contact_id)
        field = DETAIL_FIELDS[kind]
        detail = _detail(contact, field, detail_id)
        if field == "phone_numbers" and len(contact[field]) == 1:
            # A create needs phone_numbers, so a contact keeps one (guessed, docs/vendors/aircall.md#contacts).
            raise Refused(422, "A contact must keep at least one phone number")
        contact[field].remove(detail)
        contact["updated_at"] = iso(time.time())
    return "", 204


@bp.get("/v1/contacts")
def list_contacts() -> Response:
    """All shared contacts, oldest first, in the common paging (docs/vendors/aircall.md#contacts)."""
    with current().lock:
        contacts = sorted(_state()["contacts"].values(), key=lambda c: c["id"])
    return _page("contacts", contacts)


# ---------------------------------------------------------------- what an admin reads: users, numbers, ping

@bp.get("/v1/ping")
def ping() -> Response:
    # Aircall's "first API call" checks the credentials with it (docs/vendors/aircall.md#auth).
    return jsonify(ping="pong")


@bp.get("/v1/users")
def list_users() -> Response:
    """The company's users (agents), `{"users": [...], "meta"}` (docs/vendors/aircall.md#users-and-numbers)."""
    with current().lock:
        users = sorted(_state()["users"].values(), key=lambda u: u["id"])
    return _page("users", users)


@bp.get("/v1/users/<int:user_id>")
def get_user(user_id: int) -> Response:
    user = _state()["users"].get(user_id)
    if user is None:
        raise Refused(404, "User not found")
    return jsonify(user=user)


@bp.get("/v1/numbers")
def list_numbers() -> Response:
    with current().lock:
        numbers = sorted(_state()["numbers"].values(), key=lambda n: n["id"])
    return _page("numbers", numbers)


@bp.get("/v1/numbers/<int:number_id>")
def get_number(number_id: int) -> Response:
    number = _state()["numbers"].get(number_id)
    if number is None:
        raise Refused(404, "Number not found")
    return jsonify(number=number)


# ---------------------------------------------------------------- simulated calls and webhooks

def simulate_call(sandbox: Sandbox, direction: str, raw_digits: str, duration: int, answered: bool = True,
                  voicemail: bool = False, recording: bool = True) -> dict[str, Any]:
    """A call that just ended: store it as the API shows it and, with a webhook URL, send `call.created`, `call.ended`
    and (for a voicemail) `call.voicemail_left` the way Aircall does (docs/vendors/aircall.md#webhooks), in that
    order."""
    if direction not in ("inbound", "outbound"):
        raise ValueError("direction must be inbound or outbound")
    base = request.host_url.rstrip("/") if has_request_context() else "http://127.0.0.1"
    state = sandbox.state["aircall"]
    with sandbox.lock:
        call_id, ended = sandbox.next_id(), int(time.time())
        started = ended - duration - (8 if answered else 0)
        contact = next((c for c in state["contacts"].values()
                        if any(_digits(p["value"]) == _digits(raw_digits) for p in c["phone_numbers"])), None)
        left_voicemail = voicemail and direction == "inbound" and not answered
        recorded = recording and answered
        call = {"id": call_id, "direct_link": f"{PUBLIC}/v1/calls/{call_id}", "direction": direction,
                "call_uuid": f"CA{call_id:032x}", "status": "done",
                "missed_call_reason": None if answered or direction == "outbound" else "agents_did_not_answer",
                "started_at": started, "answered_at": started + 8 if answered else None, "ended_at": ended,
                "duration": ended - started,
                "voicemail": f"{base}/_sandbox/aircall/assets/voicemail/{call_id}.mp3" if left_voicemail else None,
                "recording": f"{base}/_sandbox/aircall/assets/recording/{call_id}.mp3" if recorded else None,
                "asset": f"https://assets.aircall.io/recording/{call_id}" if recorded or left_voicemail else None,
                "raw_digits": raw_digits, "archived": False, "country_code_a2": "HU", "hangup_cause": None,
                "tags": [], "comments": [], "teams": [], "participants": [],
                "user": dict(state["users"][USER_ID]) if answered or direction == "outbound" else None,
                "contact": dict(contact) if contact else None, "number": dict(state["numbers"][NUMBER_ID])}
        state["calls"][call_id] = call
        created = {**call, "status": "initial", "answered_at": None, "ended_at": None, "duration": 0,
                   "voicemail": None, "recording": None, "asset": None, "missed_call_reason": None, "user": None}
        events = [("call.created", created), ("call.ended", dict(call))]
        if left_voicemail:
            events.append(("call.voicemail_left", dict(call)))
    if sandbox.webhook_url:
        _send_in_order(sandbox, sandbox.webhook_url, events)
    return call


def _send_in_order(sandbox: Sandbox, webhook_url: str, events: list[tuple[str, dict[str, Any]]]) -> None:
    url = f"{webhook_url.rstrip('/')}/webhooks/aircall"

    def send() -> None:
        for event, data in events:
            emit_now(sandbox, "aircall", event, data, url, wait=True)

    threading.Thread(target=send, name="aircall-webhooks", daemon=True).start()


def emit(event: str, data: dict[str, Any], url: str, credentials: dict[str, str]) -> int:
    """The envelope, the webhook's token in the body, no signature; Aircall's 5-second timeout
    (docs/vendors/aircall.md#webhooks)."""
    envelope = {"resource": event.split(".", 1)[0] if "." in event else "call", "event": event,
                "timestamp": int(time.time()), "token": credentials["aircall_webhook_token"], "data": data}
    headers = {"User-Agent": "axios/1.7.7", "aircall-origin": "webhooks"}
    return httpx.post(url, json=envelope, headers=headers, timeout=5).status_code


@bp.post("/_sandbox/aircall/calls")
def simulate() -> tuple[Response, int]:
    """Control: `{"direction", "raw_digits", "duration", "answered", "voicemail", "recording"}` makes a call."""
    body = request.get_json(silent=True) or {}
    try:
        call = simulate_call(current(), str(body.get("direction", "inbound")), str(body.get("raw_digits", "")),
                             int(body.get("duration", 60)), answered=bool(body.get("answered", True)),
                             voicemail=bool(body.get("voicemail", False)),
                             recording=bool(body.get("recording", True)))
    except (TypeError, ValueError) as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(call=call), 201


@bp.get("/_sandbox/aircall/assets/<any(recording, voicemail):kind>/<int:call_id>.mp3")
def asset(kind: str, call_id: int) -> Response:
    """The media a call's `recording`/`voicemail` URL points at, until it is deleted (then 404, as on S3)."""
    call = _state()["calls"].get(call_id)
    if call is None or not call.get(kind):
        return Response("gone", 404, mimetype="text/plain")
    return Response(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(64), mimetype="audio/mpeg")


VENDOR = Vendor(name="aircall", prefixes=("/v1/",), blueprint=bp, authenticate=authenticate, error=error,
                rate_limited=rate_limited, limit=LIMIT, seed=seed, emit=emit)
