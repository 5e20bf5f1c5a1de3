"""The console's data-subject requests (flows/privacy/requests.py): the list soonest due first, and a request's
page with its identity check, deadline, manual tasks and outcome. Viewing is for `ops` and `privacy`; acting
(verify, extend, confirm a task, complete, refuse) is the privacy role's. Every view and action is audited under the
staff member's address; the pages show the person as a customer id and a hash only."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from core import audit, settings, store
from flows.privacy import requests as requests_flow

from .auth import bp, current, needs


def _back(request_id: int) -> Any:
    return redirect(url_for("staff.privacy_request", request_id=request_id))


@bp.get("/requests")
@needs("requests")
def privacy_requests() -> Any:
    show = (request.args.get("show") or "open").strip()
    rows = requests_flow.listing(open_only=show != "all")
    return render_template("staff/requests.html", rows=rows, show=show,
                           warn_days=settings.get().config.privacy.warn_days)


@bp.get("/requests/<int:request_id>")
@needs("requests")
def privacy_request(request_id: int) -> Any:
    try:
        data = requests_flow.detail(request_id)
        tasks = requests_flow.tasks(request_id)
    except LookupError:
        abort(404)
    with store.session() as s:
        audit.record(s, current().email, "request.viewed", customer_id=data["customer_id"], request_id=request_id)
    return render_template("staff/request.html", data=data, tasks=tasks, kinds=requests_flow.KINDS,
                           methods=requests_flow.METHODS, unspecified=requests_flow.UNSPECIFIED)


@bp.post("/requests/<int:request_id>/<action>")
@needs("request_act")
def privacy_request_act(request_id: int, action: str) -> Any:
    """verify | extend | complete | refuse | confirm (with `processor`): as `switchboard requests ...`, under the
    staff member's address. A verified request's work (erasure, export) is queued for a worker."""
    form, who = request.form, current().email
    try:
        if action == "verify":
            requests_flow.verify(request_id, who, form.get("method", ""), kind=form.get("type") or None, actor=who)
            requests_flow.run_request(request_id)
            flash("request_verified", "ok")
        elif action == "extend":
            requests_flow.extend(request_id, form.get("reason", ""), actor=who)
            flash("request_extended", "ok")
        elif action == "confirm":
            requests_flow.confirm_task(request_id, form.get("processor", ""), who, form.get("note"), actor=who)
            flash("request_task_confirmed", "ok")
        elif action == "complete":
            requests_flow.complete(request_id, form.get("note"), actor=who)
            flash("request_completed", "ok")
        elif action == "refuse":
            requests_flow.refuse(request_id, form.get("note", ""), actor=who)
            flash("request_refused", "ok")
        else:
            abort(404)
    except LookupError:
        abort(404)
    except requests_flow.RequestError as exc:
        flash(str(exc), "error")  # our own words, no personal data
    return _back(request_id)
