"""A stateful fake of the Gmail API v1 messages resource (`/gmail/v1/users/{user}/messages...`), shaped by
docs/vendors/gmail.md.

Bearer auth: the sandbox's fixed token, or, when the sandbox runs with `--google-key`, only the unexpired tokens its
service-account token fake issued (sandbox/google.py; production signs in so, docs/vendors/gmail.md#service-account-auth);
`{user}` must be the mailbox the sandbox serves or `me`, another user is "Delegation denied" 403; Google's error JSON
(docs/vendors/gmail.md#errors); list with `q` (`from:`, `to:`, bare words, `OR`), `pageToken` and `maxResults` ≤ 500
(docs/vendors/gmail.md#listing-messages); get with `format`; delete and batchDelete ≤ 1000 ids, unknown ids ignored
(docs/vendors/gmail.md#deleting-messages). Messages are added by `add_message` or
`POST /_sandbox/gmail/messages`.
"""
from __future__ import annotations

import base64
import hmac
import re
import time
from email.utils import format_datetime
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Request, Response, jsonify, request

from . import google
from .state import Sandbox, current
from .vendor import Refused, Vendor

PREFIX = "/gmail/v1/users"
bp = Blueprint("gmail", __name__)
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
REASONS = {400: "invalidArgument", 401: "authError", 403: "forbidden", 404: "notFound", 429: "rateLimitExceeded",
           500: "backendError", 503: "backendError"}
MAX_BATCH = 1000  # documented for batchModify, observed for batchDelete (docs/vendors/gmail.md#deleting-messages)


def error(status: int, message: str, status_name: str | None = None, reason: str | None = None) -> Response:
    """`{"error": {"code", "message", "errors": [{domain, reason, message}], "status"}}`
    (docs/vendors/gmail.md#errors)."""
    response = jsonify(error={"code": status, "message": message,
                              "status": status_name or STATUS_NAMES.get(status, "UNKNOWN"),
                              "errors": [{"domain": "global", "reason": reason or REASONS.get(status, "failed"),
                                          "message": message}]})
    response.status_code = status
    return response


def rate_limited(wait: float) -> Response:
    response = error(429, "Too many concurrent requests for user")
    response.headers["Retry-After"] = str(max(1, round(wait)))
    return response


def authenticate(req: Request, creds: dict[str, str]) -> Response | None:
    header = req.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else ""
    invalid = "Request had invalid authentication credentials. Expected OAuth 2 access token."
    mailbox = creds["gmail_user"]
    account = google.account()
    if account is None:
        if not token or not hmac.compare_digest(token.encode(), creds["gmail_token"].encode()):
            return error(401, invalid)
    else:
        grant = account.bearer(token)
        if grant is None:  # never issued, or expired: google-auth refreshes before this happens
            return error(401, invalid)
        if grant.subject is None:  # the service account itself, not impersonating: it has no mailbox
            return error(400, "Precondition check failed.", status_name="FAILED_PRECONDITION",
                         reason="failedPrecondition")
        mailbox = grant.subject
    user = req.path[len(PREFIX) + 1:].split("/", 1)[0]
    if user not in ("me", mailbox):
        return error(403, f"Delegation denied for {mailbox}")
    return None


def seed(state: dict[str, Any]) -> None:
    state["messages"] = {}


def add_message(sandbox: Sandbox, from_: str, to: str, subject: str, body: str) -> str:
    """Put a message in the mailbox (as if it was received now); its Gmail-style hex id."""
    with sandbox.lock:
        message_id = f"{sandbox.next_id():016x}"
        now = datetime.now(timezone.utc)
        headers = [{"name": "From", "value": from_}, {"name": "To", "value": to},
                   {"name": "Subject", "value": subject}, {"name": "Date", "value": format_datetime(now)},
                   {"name": "Message-ID", "value": f"<{message_id}@sandbox.example>"}]
        data = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
        sandbox.state["gmail"]["messages"][message_id] = {
            "id": message_id, "threadId": message_id, "labelIds": ["INBOX"], "snippet": body[:200],
            "historyId": str(sandbox.next_id()), "internalDate": str(int(time.time() * 1000)),
            "sizeEstimate": len(body) + 200,
            "payload": {"partId": "", "mimeType": "text/plain", "filename": "", "headers": headers,
                        "body": {"size": len(body.encode()), "data": data}}}
    return message_id


# ---------------------------------------------------------------- search

def _header(message: dict[str, Any], *names: str) -> str:
    return " ".join(h["value"] for h in message["payload"]["headers"] if h["name"].lower() in names).lower()


def _term_matches(message: dict[str, Any], term: str) -> bool:
    field, _, value = term.partition(":")
    if value and field.lower() == "from":
        return value.lower() in _header(message, "from")
    if value and field.lower() == "to":
        return value.lower() in _header(message, "to", "cc", "bcc")
    if value and field.lower() == "subject":
        return value.lower() in _header(message, "subject")
    text = f"{_header(message, 'from', 'to', 'subject')} {message['snippet'].lower()}"
    return term.lower() in text


def matches(message: dict[str, Any], query: str) -> bool:
    """Gmail's search box, the part we need: terms are ANDed, `a OR b` binds tighter; braces and brackets
    only group. Unsupported operators match as words."""
    tokens = [t for t in re.split(r"[\s(){}]+", query) if t]
    clauses: list[list[str]] = []
    join_next = False
    for token in tokens:
        if token == "OR" and clauses:
            join_next = True
            continue
        if join_next:
            clauses[-1].append(token)
        else:
            clauses.append([token])
        join_next = False
    return all(any(_term_matches(message, t) for t in clause) for clause in clauses)


# ---------------------------------------------------------------- messages

def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        raise Refused(400, f"Invalid value for {name}") from None


@bp.get(PREFIX + "/<user>/messages")
def list_messages(user: str) -> Response:
    query = request.args.get("q", "")
    limit = _int_arg("maxResults", 100)
    if not 1 <= limit <= 500:
        raise Refused(400, "maxResults must be between 1 and 500")
    offset = _int_arg("pageToken", 0) if request.args.get("pageToken") else 0
    sandbox = current()
    with sandbox.lock:
        messages = sorted(sandbox.state["gmail"]["messages"].values(),
                          key=lambda m: (int(m["internalDate"]), m["id"]), reverse=True)
        found = [{"id": m["id"], "threadId": m["threadId"]} for m in messages if matches(m, query)]
    page = found[offset: offset + limit]
    body: dict[str, Any] = {"resultSizeEstimate": len(found)}
    if page:  # `messages` is absent when nothing matched (docs/vendors/gmail.md#listing-messages)
        body["messages"] = page
    if offset + limit < len(found):
        body["nextPageToken"] = str(offset + limit)
    return jsonify(body)


@bp.get(PREFIX + "/<user>/profile")
def profile(user: str) -> Response:
    """users.getProfile: what an admin checks first, that the delegation reaches the mailbox
    (docs/vendors/gmail.md#profile)."""
    sandbox = current()
    with sandbox.lock:
        total = len(sandbox.state["gmail"]["messages"])
    mailbox = user if user != "me" else sandbox.credentials["gmail_user"]
    return jsonify(emailAddress=mailbox, messagesTotal=total, threadsTotal=total, historyId=str(sandbox.next_id()))


@bp.get(PREFIX + "/<user>/messages/<message_id>")
def get_message(user: str, message_id: str) -> Response:
    form = request.args.get("format", "full")
    if form not in ("full", "metadata", "minimal", "raw"):
        raise Refused(400, f"Invalid value at 'format' ({form})")
    with current().lock:
        message = current().state["gmail"]["messages"].get(message_id)
        if message is None:
            raise Refused(404, "Requested entity was not found.")
        shown = {k: v for k, v in message.items() if k != "payload"}
        if form == "full":
            shown["payload"] = message["payload"]
        elif form == "metadata":
            wanted = {h.lower() for h in request.args.getlist("metadataHeaders")}
            headers = [h for h in message["payload"]["headers"] if not wanted or h["name"].lower() in wanted]
            shown["payload"] = {"mimeType": message["payload"]["mimeType"], "headers": headers}
        elif form == "raw":
            head = "".join(f"{h['name']}: {h['value']}\r\n" for h in message["payload"]["headers"])
            body = base64.urlsafe_b64decode(message["payload"]["body"]["data"] + "==").decode()
            shown["raw"] = base64.urlsafe_b64encode(f"{head}\r\n{body}".encode()).decode()
    return jsonify(shown)


@bp.delete(PREFIX + "/<user>/messages/<message_id>")
def delete_message(user: str, message_id: str) -> tuple[str, int]:
    with current().lock:
        if current().state["gmail"]["messages"].pop(message_id, None) is None:
            raise Refused(404, "Requested entity was not found.")
    return "", 204


@bp.post(PREFIX + "/<user>/messages/batchDelete")
def batch_delete(user: str) -> tuple[str, int]:
    body = request.get_json(silent=True)
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise Refused(400, "Invalid ids: a non-empty list of message ids is required")
    if len(ids) > MAX_BATCH:
        raise Refused(400, f"Number of ids cannot exceed {MAX_BATCH}")
    with current().lock:
        # No guarantee that they existed; unknown ids are not an error (docs/vendors/gmail.md#deleting-messages).
        for message_id in ids:
            current().state["gmail"]["messages"].pop(message_id, None)
    return "", 204


@bp.post("/_sandbox/gmail/messages")
def add() -> tuple[Response, int]:
    """Control: `{"from", "to", "subject", "body"}` puts a message in the mailbox."""
    body = request.get_json(silent=True) or {}
    if not all(isinstance(body.get(k), str) for k in ("from", "to")):
        return jsonify(error="'from' and 'to' are required strings"), 400
    message_id = add_message(current(), body["from"], body["to"], str(body.get("subject", "")),
                             str(body.get("body", "")))
    return jsonify(id=message_id), 201


VENDOR = Vendor(name="gmail", prefixes=(PREFIX + "/",), blueprint=bp, authenticate=authenticate, error=error,
                rate_limited=rate_limited, limit=(100, 1), seed=seed)
