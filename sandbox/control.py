"""`/_sandbox/...`: the control API that tests and people drive the sandbox with, and the console page at `/`."""
from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template_string, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    "url": "http://127.0.0.1:8000/webhooks/happyfox"}` (url defaults to --webhook-url/webhooks/<service>)."""
    from .server import emit_now
    body, sandbox = _body(), current()
    service = body.get("service")
    if service not in sandbox.vendors or sandbox.vendors[service].emit is None:
        return jsonify(error=f"service must be one of {[n for n, v in sandbox.vendors.items() if v.emit]}"), 400
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
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<title>Switchboard sandbox</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}h1{font-size:1.3rem}
section{border:1px solid #ccc;border-radius:6px;padding:.5rem 1rem;margin:.8rem 0}
pre{background:#f6f6f6;padding:.5rem;max-height:18rem;overflow:auto;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(26rem,1fr));gap:.8rem}</style></head>
<body><h1>Switchboard sandbox</h1>
<p>Fakes of HubSpot, HappyFox, Aircall and Gmail on this port; SMTP sink beside it. Refreshes every 3 s.</p>
<div class="grid">
{% for name, objects in state.items() %}<section><h2>{{ name }}</h2>
{% for kind, items in objects.items() %}<h3>{{ kind }} ({{ items|length }})</h3>
<pre>{{ items|tojson(indent=1) }}</pre>{% endfor %}</section>{% endfor %}
<section><h2>mail ({{ mail|length }})</h2>{% for m in mail|reverse %}<pre>To: {{ m.to|join(", ") }}
Subject: {{ m.subject }}

{{ m.text }}</pre>{% endfor %}</section>
<section><h2>last calls</h2><pre>{% for c in calls %}{{ c.status }} {{ c.method }} {{ c.path }}
{% endfor %}</pre></section></div></body></html>"""


@bp.get("/")
def console() -> str:
    sandbox = current()
    with sandbox.lock:
        return render_template_string(CONSOLE, state=sandbox.snapshot(), mail=list(sandbox.mail),
                                      calls=list(reversed(sandbox.calls[-40:])))
