"""`/_sandbox/...`: the control API that tests and people drive the sandbox with, and the console page at `/`."""
from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template_string, request, url_for
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import website
from .state import Fault, current

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
def set_limits() -> Response:
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
    from .server import emit_now, senders
    body, sandbox = _body(), current()
    service = body.get("service")
    if service not in senders(sandbox):  # the vendors that send webhooks, and "form": the website's submission
        return jsonify(error=f"service must be one of {sorted(senders(sandbox))}"), 400
    url = body.get("url") or (sandbox.webhook_url and f"{sandbox.webhook_url.rstrip('/')}/webhooks/{service}")
    if not url:
        return jsonify(error="no url given and the sandbox was started without --webhook-url"), 400
    record = emit_now(sandbox, service, str(body.get("event", "")), body.get("data") or {}, url)
    return jsonify(record), 200


@bp.get("/_sandbox/emitted")
def emitted() -> Response:
    sandbox = current()
    with sandbox.lock:
        return jsonify(list(sandbox.emitted))


CONSOLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">{% if watch %}<meta http-equiv="refresh" content="3">{% endif %}
<title>Switchboard sandbox</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}h1{font-size:1.3rem}
section{border:1px solid #ccc;border-radius:6px;padding:.5rem 1rem;margin:.8rem 0}
pre{background:#f6f6f6;padding:.5rem;max-height:18rem;overflow:auto;font-size:12px}
label{display:block;margin:.3rem 0}input,select,textarea{display:block;min-width:18rem}
.notice{background:#eef6ee;border-color:#7a7}td,th{padding:.2rem .6rem;text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(26rem,1fr));gap:.8rem}</style></head>
<body><h1>Switchboard sandbox</h1>
<p>Fakes of HubSpot, HappyFox, Aircall and Gmail on this port; SMTP sink beside it.
{% if watch %}Refreshes every 3 s: <a href="/">stop refreshing</a> (to edit the form).
{% else %}<a href="/">Refresh</a> or <a href="/?watch=1">refresh every 3 s</a>.{% endif %}</p>
{% if notice %}<section class="notice" role="status">{{ notice }}</section>{% endif %}
<div class="grid">
<section><h2>Submit the website contact form</h2>
<form method="post" action="{{ url_for('sandbox_control.console_form') }}">
{% for name, label in fields %}<label>{{ label }}
{% if name == "cel" %}<select name="cel">{% for value, text in purposes %}
<option value="{{ value }}"{% if value == demo.cel %} selected{% endif %}>{{ text }}</option>{% endfor %}</select>
{% elif name == "reszletes_leiras" %}<textarea name="{{ name }}" rows="3">{{ demo[name] }}</textarea>
{% else %}<input name="{{ name }}" value="{{ demo[name] }}"{% if name == "email" %} type="email"{% endif %}>
{% endif %}</label>{% endfor %}
<button type="submit">Submit the website contact form</button></form></section>
<section><h2>HappyFox tickets</h2>
{% if tickets %}<table><tr><th>Ticket</th><th>Subject</th><th>Status</th><th></th></tr>
{% for t in tickets %}<tr><td>{{ t.display_id }}</td><td>{{ t.subject }}</td><td>{{ t.status }}</td><td>
{% if not t.closed %}<form method="post" action="{{ url_for('sandbox_control.console_close', ticket_id=t.id) }}">
<button type="submit" aria-label="Close ticket {{ t.display_id }}">Close</button></form>{% endif %}
</td></tr>{% endfor %}</table>{% else %}<p>No tickets yet.</p>{% endif %}
<h2>Aircall</h2><form method="post" action="{{ url_for('sandbox_control.console_call') }}">
<label>Caller's number <input name="raw_digits" value="+36 1 234 5678" type="tel"></label>
<button type="submit">Simulate an inbound call</button></form></section>
{% for name, objects in state.items() %}<section><h2>{{ name }}</h2>
{% for kind, items in objects.items() %}<h3>{{ kind }} ({{ items|length }})</h3>
<pre>{{ items|tojson(indent=1) }}</pre>{% endfor %}</section>{% endfor %}
<section><h2>mail ({{ mail|length }})</h2>{% for m in mail|reverse %}<pre>To: {{ m.to|join(", ") }}
Subject: {{ m.subject }}

{{ m.text }}</pre>{% endfor %}</section>
<section><h2>last calls</h2><pre>{% for c in calls %}{{ c.status }} {{ c.method }} {{ c.path }}
{% endfor %}</pre></section></div></body></html>"""
FORM_LABELS = {"vezeteknev": "Last name (vezetéknév)", "keresztnev": "First name (keresztnév)", "email": "Email",
               "cel": "Purpose (cél)", "termek": "Product (termék)", "rovid_leiras": "Summary (rövid leírás)",
               "reszletes_leiras": "Details (részletes leírás)"}


@bp.get("/")
def console() -> str:
    sandbox = current()
    with sandbox.lock:
        happyfox = sandbox.state.get("happyfox", {})
        statuses = {s["id"]: s for s in happyfox.get("statuses", [])}
        tickets = [{"id": t["id"], "display_id": t["display_id"], "subject": t["subject"],
                    "status": statuses.get(t["status"], {}).get("name", t["status"]),
                    "closed": statuses.get(t["status"], {}).get("behavior") == "completed"}
                   for t in happyfox.get("tickets", {}).values()]
        return render_template_string(CONSOLE, state=sandbox.snapshot(), mail=list(sandbox.mail),
                                      calls=list(reversed(sandbox.calls[-40:])), tickets=tickets,
                                      watch=bool(request.args.get("watch")), notice=request.args.get("notice"),
                                      fields=list(FORM_LABELS.items()), demo=website.DEMO_FIELDS,
                                      purposes=website.purposes())


def _back(notice: str) -> Response:
    return redirect(url_for("sandbox_control.console", watch=1, notice=notice), 303)


@bp.post("/_sandbox/console/form")
def console_form() -> Response:
    """The console's form: the website's submission, signed and posted as `POST /_sandbox/emit` posts it."""
    from .server import emit_now
    sandbox = current()
    if not sandbox.webhook_url:
        return _back("Not sent: the sandbox was started without --webhook-url (switchboard run sets it).")
    fields = {name: request.form.get(name, "") for name in website.DEMO_FIELDS}
    record = emit_now(sandbox, website.SERVICE, "submission", {"form": website.FORM, "fields": fields},
                      f"{sandbox.webhook_url.rstrip('/')}/webhooks/{website.SERVICE}")
    return _back(f"Form sent; the service answered {record['status']}.")


@bp.post("/_sandbox/console/happyfox/<int:ticket_id>/close")
def console_close(ticket_id: int) -> Response:
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
        return _back(f"HappyFox refused to close ticket {ticket_id}: {answer.status_code}.")
    return _back(f"Closed HappyFox ticket {answer.get_json()['display_id']}.")


@bp.post("/_sandbox/console/aircall/call")
def console_call() -> Response:
    from .aircall import simulate_call
    call = simulate_call(current(), "inbound", request.form.get("raw_digits") or "+36 1 234 5678", 60)
    return _back(f"Aircall call {call['id']} ended.")
