"""`/_sandbox/...`: the control API that tests and people drive the sandbox with, and the console page at `/`."""
from __future__ import annotations

import dataclasses
import importlib
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as BaseResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import console as console_view
from . import website
from .emit import emit_now, senders
from .state import Fault, current
from .vendor import Refused

bp = Blueprint("sandbox_control", __name__)


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(Response('{"error": "expected a JSON object"}', 400, mimetype="application/json"))
    return body


@bp.get("/_sandbox/state")
def state() -> Response:
    return jsonify(current().snapshot())


@bp.get("/_sandbox/calls")
def calls() -> Response:
    sandbox, service = current(), request.args.get("service")
    with sandbox.lock:
        listed = [c for c in sandbox.calls if service in (None, c["service"])]
    return jsonify(listed)


@bp.delete("/_sandbox/calls")
def clear_calls() -> Response:
    sandbox = current()
    with sandbox.lock:
        sandbox.calls.clear()
    return jsonify(ok=True)


class FaultIn(BaseModel):
    """What `POST /_sandbox/faults` accepts: checked here, so that a typo is a 400 now and not a 500 later."""
    model_config = ConfigDict(extra="forbid")
    service: str
    method: str = "*"
    path: str = "*"
    status: int | None = Field(default=None, ge=100, le=599)
    times: int = Field(default=1, ge=1)
    retry_after: float | None = Field(default=None, ge=0)
    delay: float | None = Field(default=None, ge=0, le=300)
    drop: bool = False
    every: int = Field(default=1, ge=1)


class LimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: int = Field(gt=0)
    per_seconds: float = Field(gt=0)


def _invalid(exc: ValidationError, prefix: str = "") -> tuple[Response, int]:
    fields = {prefix + (".".join(map(str, e["loc"])) or "body"): e["msg"] for e in exc.errors()}
    return jsonify(error="invalid request", fields=fields), 400


@bp.post("/_sandbox/faults")
def add_fault() -> tuple[Response, int]:
    sandbox = current()
    try:
        given = FaultIn.model_validate(_body())
    except ValidationError as exc:
        return _invalid(exc)
    if given.service not in (*sandbox.vendors, "*"):
        return jsonify(error="invalid request",
                       fields={"service": f"must be one of {sorted(sandbox.vendors)} or '*'"}), 400
    fault = Fault(**given.model_dump())
    fault.method = fault.method.upper()
    with sandbox.lock:
        sandbox.faults.append(fault)
    return jsonify(dataclasses.asdict(fault)), 201


@bp.get("/_sandbox/faults")
def list_faults() -> Response:
    sandbox = current()
    with sandbox.lock:
        return jsonify([dataclasses.asdict(f) for f in sandbox.faults if f.times > 0])


@bp.delete("/_sandbox/faults")
def clear_faults() -> Response:
    sandbox = current()
    with sandbox.lock:
        sandbox.faults.clear()
    return jsonify(ok=True)


@bp.get("/_sandbox/mail")
def mail() -> Response:
    sandbox = current()
    with sandbox.lock:
        return jsonify(list(sandbox.mail))


@bp.post("/_sandbox/reset")
def reset() -> Response:
    current().reset()
    return jsonify(ok=True)


@bp.post("/_sandbox/limits")
def set_limits() -> ResponseReturnValue:
    """`{"hubspot": {"requests": 10, "per_seconds": 1}, "happyfox": null}`; null lifts a limit."""
    sandbox, given = current(), _body()
    limits: dict[str, LimitIn | None] = {}
    for service, limit in given.items():  # all checked before any applies
        if service not in sandbox.vendors:
            return jsonify(error=f"unknown service {service!r}",
                           fields={service: f"must be one of {sorted(sandbox.vendors)}"}), 400
        try:
            limits[service] = None if limit is None else LimitIn.model_validate(limit)
        except ValidationError as exc:
            return _invalid(exc, prefix=f"{service}.")
    with sandbox.lock:
        for service, limit in limits.items():
            if limit is None:
                sandbox.limits.pop(service, None)
            else:
                sandbox.limits[service] = (limit.requests, limit.per_seconds)
        return jsonify({k: {"requests": r, "per_seconds": p} for k, (r, p) in sandbox.limits.items()})


@bp.post("/_sandbox/emit")
def emit() -> tuple[Response, int]:
    """Send a vendor webhook now: `{"service": "happyfox", "event": "ticket.updated", "data": {...},
    "url": "http://127.0.0.1:8000/webhooks/happyfox"}` (url defaults to --webhook-url/webhooks/<service>).
    `{"service": "form", "data": {"form": "website", "fields": {...}}}` posts a website form submission."""
    body, sandbox = _body(), current()
    service = body.get("service")
    if service not in senders(sandbox):  # the vendors that send webhooks, and "form": the website's submission
        return jsonify(error=f"service must be one of {sorted(senders(sandbox))}"), 400
    url = body.get("url") or (sandbox.webhook_url and f"{sandbox.webhook_url.rstrip('/')}/webhooks/{service}")
    if not url:
        return jsonify(error="no url given and the sandbox was started without --webhook-url"), 400
    record = emit_now(sandbox, service, str(body.get("event", "")), body.get("data") or {}, url)
    return jsonify(record), 200


class SeedTicketIn(BaseModel):
    """One customer's ticket on both sides, as intake leaves it: the HappyFox ticket (`POST /tickets/`'s fields) in
    `status`, and its HubSpot mirror (ticket properties) associated to the contact (contact properties), all last
    modified at `modified`."""
    model_config = ConfigDict(extra="forbid")
    modified: datetime
    happyfox: dict[str, Any]
    status: str | None = None
    hubspot_contact: dict[str, Any]
    hubspot_ticket: dict[str, Any]


class SeedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tickets: list[SeedTicketIn] = Field(max_length=5000)


@bp.post("/_sandbox/seed/tickets")
def seed_tickets() -> tuple[Response, int]:
    """Many tickets at once, made by the fakes' own create paths (so the APIs list them as they list created
    ones) but dated in the past, without webhooks or rate limits: what a benchmark at 10,000 tickets seeds with.
    Answers each item's ids: `{"tickets": [{"happyfox_id", "display_id", "happyfox_user_id", "hubspot_contact_id",
    "hubspot_ticket_id"}]}`; nothing is stored when an item is refused (400)."""
    # By name, as server.py loads the fakes: they stay outside the strictly typed import graph.
    seed_ticket = importlib.import_module("sandbox.happyfox.tickets").seed_ticket
    seed_mirror = importlib.import_module("sandbox.hubspot.objects").seed_mirror
    try:
        given = SeedIn.model_validate(_body())
    except ValidationError as exc:
        return _invalid(exc)
    sandbox = current()
    with sandbox.lock:
        happyfox, hubspot = sandbox.state["happyfox"], sandbox.state["hubspot"]
        made_before = {(vendor, kind): set(sandbox.state[vendor][kind])
                       for vendor, kind in (("happyfox", "tickets"), ("happyfox", "users"), ("hubspot", "contacts"),
                                            ("hubspot", "tickets"))}
        links_before = len(hubspot["associations"])
        try:
            made = []
            emails = {(c["properties"].get("email") or "").lower()
                      for c in sandbox.state["hubspot"]["contacts"].values() if not c["archived"]}
            for number, item in enumerate(given.tickets):
                stamp = item.modified.astimezone(timezone.utc)
                ticket = seed_ticket(sandbox.state["happyfox"], item.happyfox, item.status, stamp)
                email = str(item.hubspot_contact.get("email") or "").strip().lower()
                if email in emails:
                    raise Refused(409, f"tickets.{number}: HubSpot contact {email} exists")
                emails.add(email)
                contact, mirror = seed_mirror(item.hubspot_contact, item.hubspot_ticket, stamp)
                made.append({"happyfox_id": ticket["id"], "display_id": ticket["display_id"],
                             "happyfox_user_id": ticket["user"], "hubspot_contact_id": contact["id"],
                             "hubspot_ticket_id": mirror["id"]})
        except Refused as exc:  # what this request made goes again
            for (vendor, kind), ids in made_before.items():
                for made_id in set(sandbox.state[vendor][kind]) - ids:
                    del sandbox.state[vendor][kind][made_id]
            del hubspot["associations"][links_before:]
            return jsonify(error="invalid request", detail=exc.body or exc.message), 400
    return jsonify(tickets=made), 201


@bp.get("/_sandbox/idle")
def idle() -> tuple[Response, int]:
    """Answer once nothing has been under way for `quiet` seconds (default 0.05): every vendor request answered and
    logged, every webhook sent; 408 after `timeout` seconds (default 10). Tests wait on it instead of sleeping."""
    try:
        quiet = float(request.args.get("quiet", 0.05))
        timeout = min(float(request.args.get("timeout", 10)), 60.0)
    except ValueError:
        return jsonify(error="quiet and timeout are seconds"), 400
    settled = current().wait_idle(quiet, timeout)
    return jsonify(idle=settled), 200 if settled else 408


@bp.get("/_sandbox/emitted")
def emitted() -> Response:
    sandbox = current()
    with sandbox.lock:
        return jsonify(list(sandbox.emitted))


FORM_LABELS = {"vezeteknev": "Last name (vezetéknév)", "keresztnev": "First name (keresztnév)", "email": "Email",
               "cel": "Purpose (cél)", "termek": "Product (termék)", "rovid_leiras": "Summary (rövid leírás)",
               "reszletes_leiras": "Details (részletes leírás)"}


bp.add_app_template_filter(console_view.pretty_json, "pretty_json")


@bp.get("/")
def console() -> str:
    return render_template("console.html", **console_view.context(current()),
                           watch=bool(request.args.get("watch")), notice=request.args.get("notice"),
                           error=request.args.get("level") == "error",
                           fields=list(FORM_LABELS.items()), demo=website.DEMO_FIELDS, purposes=website.purposes())


def _back(notice: str, error: bool = False) -> BaseResponse:
    """Back to the console (refreshing, to show what the action causes) with a notice; `error` shows it red."""
    level: dict[str, Any] = {"level": "error"} if error else {}
    return redirect(url_for("sandbox_control.console", watch=1, notice=notice, **level), 303)


def _answered(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _reason(answer: BaseResponse) -> str:
    """What HappyFox's error body says (`{"error": "..."}`, or a list of field errors for a 400), shortened."""
    body = answer.get_json(silent=True)
    said = body.get("error") if isinstance(body, dict) else None
    if isinstance(said, list):
        said = "; ".join(f"{e.get('field')}: {', '.join(map(str, e.get('errors', [])))}"
                         for e in said if isinstance(e, dict))
    return str(said or answer.get_data(as_text=True)).strip()[:200]


@bp.post("/_sandbox/console/form")
def console_form() -> BaseResponse:
    """The console's form: the website's submission, signed and posted as `POST /_sandbox/emit` posts it."""
    sandbox = current()
    if not sandbox.webhook_url:
        return _back("Not sent: the sandbox was started without --webhook-url (switchboard run sets it).", error=True)
    fields = {name: request.form.get(name, "") for name in website.DEMO_FIELDS}
    record = emit_now(sandbox, website.SERVICE, "submission", {"form": website.FORM, "fields": fields},
                      f"{sandbox.webhook_url.rstrip('/')}/webhooks/{website.SERVICE}")
    status = record["status"]
    if not isinstance(status, int):  # "error: ConnectError": nothing answered
        return _back(f"Form not sent: {record['url']} could not be reached ({status}).", error=True)
    if not 200 <= status < 300:
        return _back(f"Form refused: the service answered {_answered(status)}.", error=True)
    return _back(f"Form sent; the service answered {status}.")


@bp.post("/_sandbox/console/happyfox/<int:ticket_id>/close")
def console_close(ticket_id: int) -> BaseResponse:
    """Close as a staff member does: through the HappyFox fake's own `staff_update/` (with its authentication,
    call log and the smart-rule webhook it sends), not by editing the state."""
    sandbox = current()
    with sandbox.lock:
        happyfox = sandbox.state["happyfox"]
        closed = next(s["id"] for s in happyfox["statuses"] if s["name"] == "Closed")
        staff = happyfox["staff"][0]["id"]
    creds = sandbox.credentials
    # A fresh app context: the inner request would otherwise share (and overwrite) this request's `g`.
    with current_app.app_context():
        answer = current_app.test_client().post(
            f"/api/1.1/json/ticket/{ticket_id}/staff_update/", json={"staff": staff, "status": closed},
            auth=(creds["happyfox_api_key"], creds["happyfox_auth_code"]))
    if answer.status_code != 200:
        return _back(f"HappyFox refused to close ticket {ticket_id}: {_answered(answer.status_code)}: "
                     f"{_reason(answer)}", error=True)
    return _back(f"Closed HappyFox ticket {answer.get_json()['display_id']}.")


@bp.post("/_sandbox/console/aircall/call")
def console_call() -> BaseResponse:
    from .aircall import simulate_call
    call = simulate_call(current(), "inbound", request.form.get("raw_digits") or "+36 1 234 5678", 60)
    return _back(f"Aircall call {call['id']} ended.")
