"""The console's privacy pages: customers (the identity graph and its merges), the access export, erasure behind a
confirmation page, and the erasure receipts. They reuse the entry points of `switchboard export|erase|erasure`
(`flows/privacy/access.py`, `flows/privacy/erasure.py`). Every view of a customer's data and every action is audited under the
staff member's address, with ids and salted hashes only."""
from __future__ import annotations

import tempfile
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from core import audit, store
from core.models import Customer, Erasure, Identity, Ticket
from flows.privacy import access, erasure, erasure_steps

from .auth import bp, current, needs

LIMIT = 100


def _customer_or_404(s: Any, customer_id: int) -> Customer:
    customer: Customer | None = s.get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


@bp.get("/customers")
@needs("customers")
def customers() -> Any:
    """Newest customers by id (no personal data on the list); `q` finds one by email, phone or a vendor id."""
    from flows import identity
    q = (request.args.get("q") or "").strip()
    with store.session() as s:
        if q:
            systems = ("email", "phone", "hubspot", "happyfox", "aircall")
            found = identity.find(s, **{system: q for system in systems})
            ids = [c.id for c in found]
            audit.record(s, current().email, "customers.searched", query_hash=audit.subject_hash(q),
                         found=len(ids))
        else:
            ids = list(s.scalars(select(Customer.id).order_by(Customer.id.desc()).limit(LIMIT)))
        counts = dict(s.execute(select(Identity.customer_id, func.count()).where(Identity.customer_id.in_(ids))
                                .group_by(Identity.customer_id)).all())
        rows = list(s.scalars(select(Customer).where(Customer.id.in_(ids)).order_by(Customer.id.desc())))
        s.flush()  # the audit entry is written before the objects are detached
        s.expunge_all()
    return render_template("staff/customers.html", rows=rows, counts=counts, q=q, limit=LIMIT)


@bp.get("/customers/<int:customer_id>")
@needs("customers")
def customer(customer_id: int) -> Any:
    with store.session() as s:
        row = _customer_or_404(s, customer_id)
        audit.record(s, current().email, "customer.viewed", customer_id=customer_id)
        identities = list(s.scalars(select(Identity).where(Identity.customer_id == customer_id)
                                    .order_by(Identity.system, Identity.id)))
        merged = list(s.scalars(select(Customer.id).where(Customer.merged_into_id == customer_id)))
        tickets = list(s.scalars(select(Ticket).where(Ticket.customer_id == customer_id).order_by(Ticket.id)))
        erasures = list(s.scalars(select(Erasure).where(Erasure.customer_id == customer_id).order_by(Erasure.id)))
        s.flush()  # the audit entry is written before the objects are detached
        s.expunge_all()
    return render_template("staff/customer.html", row=row, identities=identities, merged=merged,
                           tickets=tickets, erasures=erasures)


def _lookup_identifier(customer_id: int) -> tuple[str | None, str | None]:
    """The email (else the phone) the CLI's export and erasure take to find the person."""
    from flows import identity
    with store.session() as s:
        _customer_or_404(s, customer_id)
        return identity.value_of(s, customer_id, "email"), identity.value_of(s, customer_id, "phone")


@bp.post("/customers/<int:customer_id>/export")
@needs("export")
def export(customer_id: int) -> Any:
    """As `switchboard export`: everything every processor and Switchboard hold, as the JSON file (audited by the
    flow under the staff member's address). The server keeps no copy."""
    email, phone = _lookup_identifier(customer_id)
    if not email and not phone:
        flash("export_no_identifier", "error")
        return redirect(url_for("staff.customer", customer_id=customer_id))
    with tempfile.TemporaryDirectory(prefix="switchboard-export-") as out:
        result = access.export(email=email, phone=None if email else phone, out_dir=out, actor=current().email)
        body = result.json_path.read_bytes()
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="access-customer-{customer_id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/customers/<int:customer_id>/erase")
@needs("erase")
def erase_confirm(customer_id: int) -> Any:
    with store.session() as s:
        row = _customer_or_404(s, customer_id)
        identities = dict(s.execute(select(Identity.system, func.count()).where(Identity.customer_id == customer_id)
                                    .group_by(Identity.system)).all())
        ticket_count = s.scalar(select(func.count()).select_from(Ticket).where(Ticket.customer_id == customer_id))
        s.expunge_all()
    return render_template("staff/erase_confirm.html", row=row, identities=identities, ticket_count=ticket_count,
                           processors=erasure_steps.ORDER, missing=request.args.get("missing") == "1")


@bp.post("/customers/<int:customer_id>/erase")
@needs("erase")
def erase(customer_id: int) -> Any:
    """As `switchboard erase --queue`: open the request (audited by the flow under the staff member's address) and
    queue its steps; the receipt page follows them."""
    with store.session() as s:
        row = _customer_or_404(s, customer_id)
        if row.legal_hold:
            flash("erase_legal_hold", "error")
            return redirect(url_for("staff.customer", customer_id=customer_id))
    if request.form.get("confirm") != "yes":
        return redirect(url_for("staff.erase_confirm", customer_id=customer_id, missing=1))
    erasure_id = erasure.request(customer_id=customer_id, reason="request", actor=current().email)
    erasure.start(erasure_id)
    flash("erase_started", "ok")
    return redirect(url_for("staff.erasure_receipt", erasure_id=erasure_id))


@bp.get("/erasures")
@needs("erasures")
def erasures() -> Any:
    status = (request.args.get("status") or "").strip()
    rows = erasure.listing(status if status in ("pending", "failed", "done") else None, limit=LIMIT)
    return render_template("staff/erasures.html", rows=rows, status=status, limit=LIMIT)


@bp.get("/erasures/<int:erasure_id>")
@needs("erasures")
def erasure_receipt(erasure_id: int) -> Any:
    try:
        data = erasure.status(erasure_id)
    except LookupError:
        abort(404)
    return render_template("staff/erasure.html", data=data)
