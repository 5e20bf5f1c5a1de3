"""The staff console's complaint register, report and legal holds (docs/staff.md) through Flask's test client,
signed in at the sandbox's fake Google: the `complaints` role edits the register's fields and the change reaches
the HappyFox and HubSpot fakes as a staff edit there would; a second submit writes nothing; a bad value is refused
by field name with nothing written; a vendor's 5xx leaves the write to a job; other roles see and cannot edit;
the audit names the person and never the values; the quarterly report downloads; holds are shown to privacy and
ops only; the overview counts complaints due."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from core import jobs, store
from core.models import Audit, Complaint, Customer
from flows.complaints import complaint_fields, complaint_report, complaint_sync
from flows.privacy import retention

from .flowkit import fast_vendors, objects, put_form, run, tickets
from .staffkit import COMPLAINTS, OPS, PRIVACY, VIEWER, csrf, sign_in

SECRET = "Kétszer terhelték"  # a fragment of the complaint's description: never in the audit


@pytest.fixture
def flow(settings: Any, sandbox: Any) -> Any:
    fast_vendors()
    return sandbox


@pytest.fixture
def complaint_id(flow: Any) -> int:
    assert run(put_form(purpose="panasz", summary="Hibás számla", details=f"{SECRET} a kártyámat.")) == "done"
    with store.session() as s:
        [found] = s.scalars(select(Complaint.id)).all()
    return found


def audits(action: str) -> list[Audit]:
    with store.session() as s:
        rows = list(s.scalars(select(Audit).where(Audit.action == action).order_by(Audit.id)))
        s.expunge_all()
        return rows


def register(complaint_id: int) -> Complaint:
    with store.session() as s:
        row = s.get(Complaint, complaint_id)
        s.expunge_all()
    assert row is not None
    return row


def form_of(client: Any, complaint_id: int, **changes: str) -> dict[str, str]:
    """The edit form as the page shows it (every field with its `was_` twin), with `changes` typed in."""
    c = register(complaint_id)
    shown = {name: complaint_fields.render(name, getattr(c, name)) for name in complaint_fields.FIELDS}
    return {"csrf": csrf(client), **shown, **{f"was_{k}": v for k, v in shown.items()}, **changes}


def happyfox_fields(flow: Any, settings: Any) -> dict[str, Any]:
    """The complaint ticket's custom fields in the HappyFox fake, by the register's field name."""
    listed = flow.http.get("/api/1.1/json/ticket_custom_fields/", auth=happyfox_auth(settings)).json()
    ids = {f["name"]: str(f["id"]) for f in listed}
    ticket = flow.state("happyfox")["tickets"][str(tickets()[0].happyfox_id)]
    return {name: ticket["custom_fields"].get(ids[label])
            for name, label in settings.config.complaints.happyfox_fields.items()}


def hubspot_properties(flow: Any) -> dict[str, Any]:
    [ticket] = objects(flow, "hubspot", "tickets")
    return ticket["properties"]


def happyfox_auth(settings: Any) -> tuple[str, str]:
    env = settings.env
    return env.secret("happyfox_api_key"), env.secret("happyfox_auth_code")


def vendor_writes(flow: Any) -> list[tuple[str, str, str]]:
    return [(c["service"], c["method"], c["path"]) for c in flow.calls()
            if c["method"] != "GET" and c["service"] in ("happyfox", "hubspot")]


def test_the_complaints_role_edits_the_register_and_it_reaches_happyfox_and_hubspot(client, flow, settings,
                                                                                    complaint_id):
    sign_in(client, COMPLAINTS)
    page = client.get(f"/staff/complaints/{complaint_id}?lang=en").get_data(as_text=True)
    assert 'id="complaint-form"' in page and "(7) Potential loss (HUF)" in page
    assert "Kovács Kata" in page  # the complaint officer sees the identification data (audited below)

    flow.clear_calls()
    answer = client.post(f"/staff/complaints/{complaint_id}", data=form_of(
        client, complaint_id, event_type="external_fraud", person_concerned="Ügyfélszolgálat",
        loss_amount_huf="50 000 Ft", measure_due_at="2026-12-18", measure_responsible="Pénzügy"))
    assert answer.status_code == 302 and answer.headers["Location"] == f"/staff/complaints/{complaint_id}"
    c = register(complaint_id)
    assert (c.event_type, c.person_concerned, c.loss_amount_huf) == ("external_fraud", "Ügyfélszolgálat", 50000)
    assert c.measure_due_at == datetime(2026, 12, 18, 22, 59, 59, tzinfo=timezone.utc)  # the Budapest day's end
    hf = happyfox_fields(flow, settings)
    assert (hf["event_type"], hf["loss_amount_huf"], hf["measure_due_at"]) == ("external_fraud", "50000", "2026-12-18")
    props = hubspot_properties(flow)
    assert props["complaint_event_type"] == "external_fraud" and props["complaint_loss_amount_huf"] == "50000"
    assert props["complaint_measure_deadline"] == "2026-12-18" and props["complaint_measure_responsible"] == "Pénzügy"
    writes = vendor_writes(flow)
    assert ("happyfox", "POST", f"/api/1.1/json/ticket/{tickets()[0].happyfox_id}/staff_update/") in writes
    assert any(service == "hubspot" and method == "PATCH" for service, method, _ in writes)
    assert "Saved in the register, HappyFox and HubSpot." in client.get(
        f"/staff/complaints/{complaint_id}").get_data(as_text=True)

    [entry] = audits("complaint.updated")
    assert entry.actor == COMPLAINTS and entry.detail["source"] == "staff"
    assert entry.detail["fields"] == ["event_type", "loss_amount_huf", "measure_due_at", "measure_responsible",
                                      "person_concerned"]
    trail = repr([(a.actor, a.action, a.detail) for a in audits("complaint.updated") + audits("complaint.viewed")])
    assert "50000" not in trail and "Ügyfélszolgálat" not in trail and "Kovács" not in trail and SECRET not in trail
    assert [a.actor for a in audits("complaint.viewed")][:1] == [COMPLAINTS]

    # The same form sent again (a double click, a reload): nothing changes and nothing is written anywhere.
    flow.clear_calls()
    again = client.post(f"/staff/complaints/{complaint_id}", data=form_of(
        client, complaint_id, event_type="external_fraud", person_concerned="Ügyfélszolgálat",
        loss_amount_huf="50 000 Ft", measure_due_at="2026-12-18", measure_responsible="Pénzügy") | {
        f"was_{k}": "" for k in ("event_type", "person_concerned", "loss_amount_huf", "measure_due_at",
                                  "measure_responsible")})
    assert again.status_code == 302 and vendor_writes(flow) == []
    assert len(audits("complaint.updated")) == 1
    assert "Nothing changed" in client.get(f"/staff/complaints/{complaint_id}").get_data(as_text=True)


def test_a_stale_form_does_not_undo_another_edit(client, flow, complaint_id):
    sign_in(client, COMPLAINTS)
    stale = form_of(client, complaint_id)  # loaded before the other edit
    client.post(f"/staff/complaints/{complaint_id}", data=form_of(client, complaint_id, person_concerned="Pénztár"))
    client.post(f"/staff/complaints/{complaint_id}", data=stale | {"measure": "Visszatérítés"})
    c = register(complaint_id)
    assert (c.person_concerned, c.measure) == ("Pénztár", "Visszatérítés")


def test_the_officer_steps_follow_an_unfounded_outcome_with_reasons(client, flow, complaint_id):
    """As after a HappyFox edit: the written answer with the reasons goes to the customer as a HappyFox reply."""
    sign_in(client, COMPLAINTS)
    client.post(f"/staff/complaints/{complaint_id}", data=form_of(
        client, complaint_id, outcome="unfounded", reasons="A terhelés egyszer történt meg."))
    c = register(complaint_id)
    assert c.outcome == "unfounded" and c.notice_due_at is not None and c.notice_sent_at is not None
    ticket = flow.state("happyfox")["tickets"][str(tickets()[0].happyfox_id)]
    assert any("A terhelés egyszer történt meg." in (u.get("message") or {}).get("text", "")
               for u in ticket["updates"] if isinstance(u, dict))
    assert hubspot_properties(flow)["complaint_outcome"] == "unfounded"


def test_a_value_that_cannot_be_read_is_refused_by_name_and_nothing_is_written(client, flow, complaint_id):
    sign_in(client, COMPLAINTS)
    flow.clear_calls()
    answer = client.post(f"/staff/complaints/{complaint_id}?lang=en", data=form_of(
        client, complaint_id, loss_amount_huf="sok pénz", person_concerned="Pénztár"))
    assert answer.status_code == 400
    text = answer.get_data(as_text=True)
    assert "Nothing was saved" in text and "(7) Potential loss (HUF)" in text and 'value="sok pénz"' in text
    assert register(complaint_id).person_concerned is None and vendor_writes(flow) == []
    [refused] = audits("complaint.edit_refused")
    assert refused.actor == COMPLAINTS and refused.detail["fields"] == ["loss_amount_huf"]
    assert "sok" not in repr(refused.detail)


def test_a_vendor_5xx_leaves_the_write_to_a_job_that_completes_it(client, flow, complaint_id):
    sign_in(client, COMPLAINTS)
    jobs.huey.flush()
    flow.fault(service="hubspot", method="PATCH", status=503, times=10)
    answer = client.post(f"/staff/complaints/{complaint_id}", data=form_of(client, complaint_id,
                                                                            person_concerned="Pénztár"))
    assert answer.status_code == 302 and register(complaint_id).person_concerned == "Pénztár"
    assert "a job retries the write" in client.get(f"/staff/complaints/{complaint_id}?lang=en").get_data(as_text=True)
    assert hubspot_properties(flow).get("complaint_person_concerned") in (None, "")
    [queued] = audits("complaint.push_queued")
    assert queued.actor == COMPLAINTS and queued.detail["fields"] == ["person_concerned"]
    flow.http.delete("/_sandbox/faults").raise_for_status()
    task = jobs.huey.dequeue()
    assert task is not None and task.name.endswith("push_complaint_fields")
    jobs.huey.execute(task)
    assert hubspot_properties(flow)["complaint_person_concerned"] == "Pénztár"


@pytest.mark.parametrize("email", [VIEWER, OPS, PRIVACY])
def test_other_roles_see_the_register_and_may_not_edit_it(client, flow, complaint_id, email):
    sign_in(client, email)
    listing = client.get("/staff/complaints?lang=en").get_data(as_text=True)
    assert f'/staff/complaints/{complaint_id}"' in listing and "Kovács" not in listing
    page = client.get(f"/staff/complaints/{complaint_id}?lang=en").get_data(as_text=True)
    assert 'id="complaint-form"' not in page and "Only the complaints role may edit the register." in page
    assert ("Kovács Kata" in page) is (email != VIEWER)  # identification data: not for the viewer
    flow.clear_calls()
    forced = client.post(f"/staff/complaints/{complaint_id}", data=form_of(client, complaint_id,
                                                                            person_concerned="Pénztár"))
    assert forced.status_code == 403 and register(complaint_id).person_concerned is None
    assert vendor_writes(flow) == []
    assert [(a.actor, a.detail["permission"]) for a in audits("staff.refused")] == [(email, "complaint_edit")]


def test_an_edit_needs_the_csrf_token(client, flow, complaint_id):
    sign_in(client, COMPLAINTS)
    data = form_of(client, complaint_id, person_concerned="Pénztár")
    assert client.post(f"/staff/complaints/{complaint_id}", data=data | {"csrf": "forged"}).status_code == 400
    assert register(complaint_id).person_concerned is None


def test_the_quarterly_report_downloads_as_the_cli_makes_it(client, flow, complaint_id):
    sign_in(client, VIEWER)
    quarter = complaint_report.previous_quarter(datetime.now(timezone.utc) + timedelta(days=92))  # this one
    page = client.get("/staff/complaints").get_data(as_text=True)
    assert 'id="report-download"' in page and f'value="{quarter}"' in page
    answer = client.post("/staff/complaints/report", data={"csrf": csrf(client), "quarter": quarter,
                                                           "format": "csv"})
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == f'attachment; filename="complaints-{quarter}.csv"'
    body = answer.get_data(as_text=True)
    assert body.startswith("quarter,section,key,value") and f"{quarter},total,received,1" in body
    pdf = client.post("/staff/complaints/report", data={"csrf": csrf(client), "quarter": quarter, "format": "pdf"})
    assert pdf.status_code == 200 and pdf.get_data()[:5] == b"%PDF-"
    assert client.post("/staff/complaints/report", data={"csrf": csrf(client), "quarter": "2026Q5",
                                                         "format": "csv"}).status_code == 400
    assert [(a.actor, a.detail) for a in audits("complaints.report_downloaded")] == [
        (VIEWER, {"quarter": quarter, "format": "csv"}), (VIEWER, {"quarter": quarter, "format": "pdf"})]


def test_legal_holds_are_shown_to_privacy_and_ops_only(client, flow, complaint_id):
    held_by_hand = retention_hold()
    sign_in(client, PRIVACY)
    page = client.get("/staff/holds?lang=en")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    customer_id = register(complaint_id).customer_id
    assert f'/staff/customers/{customer_id}"' in text and f'/staff/complaints/{complaint_id}"' in text
    assert "while the complaint is open, then 5 years after it closes" in text
    assert f'/staff/customers/{held_by_hand}"' in text and "until released" in text and "Set by hand: cli" in text
    assert "Kovács" not in text and "kata.kovacs" not in text
    assert [(a.actor, a.detail) for a in audits("holds.viewed")] == [(PRIVACY, {"count": 2})]
    with store.session() as s:  # closed, and its keeping period over: the hold has ended
        c = s.get(Complaint, complaint_id)
        c.status, c.keep_until = "closed", (datetime.now(timezone.utc) - timedelta(days=2)).date()
    text = client.get("/staff/holds?lang=en").get_data(as_text=True)
    assert f'/staff/complaints/{complaint_id}"' not in text and f'/staff/customers/{held_by_hand}"' in text

    client.post("/staff/sign-out", data={"csrf": csrf(client)})
    sign_in(client, OPS)
    assert client.get("/staff/holds").status_code == 200
    for email in (VIEWER, COMPLAINTS):
        client.post("/staff/sign-out", data={"csrf": csrf(client)})
        sign_in(client, email)
        assert client.get("/staff/holds").status_code == 403
        assert 'href="/staff/holds"' not in client.get("/staff/").get_data(as_text=True)


def retention_hold() -> int:
    """A customer put under legal hold by hand, as `switchboard retention hold` does; their id."""
    from flows import identity
    with store.session() as s:
        customer = identity.resolve(s, identity.Person(email="tartott@example.net"), "test")
        s.flush()
        customer_id = customer.id
    retention.set_legal_hold(True, email="tartott@example.net", actor="cli")
    with store.session() as s:
        assert s.get(Customer, customer_id).legal_hold
    return customer_id


def test_the_overview_counts_complaints_due(client, flow, complaint_id):
    sign_in(client, VIEWER)
    assert '<div class="big">0</div>' in overview_card(client)
    with store.session() as s:  # the answer to the complainant was due an hour ago
        s.get(Complaint, complaint_id).answer_due_at = datetime.now(timezone.utc) - timedelta(hours=1)
    card = overview_card(client)
    assert '<div class="big">1</div>' in card and "answer to the complainant" in card and "overdue" in card
    assert f'/staff/complaints/{complaint_id}"' in card


def overview_card(client: Any) -> str:
    text = client.get("/staff/?lang=en").get_data(as_text=True)
    start = text.index('id="complaints-due"')
    return text[start:text.index("</section>", start)]


def test_a_mail_server_down_leaves_the_escalation_to_a_job_and_the_vendors_still_get_the_edit(client, flow,
                                                                                              complaint_id):
    from flows import vendors
    sign_in(client, COMPLAINTS)
    jobs.huey.flush()
    mail = vendors.get().mail
    port, mail.port = mail.port, closed_port()  # the SMTP server is down
    try:
        answer = client.post(f"/staff/complaints/{complaint_id}", data=form_of(client, complaint_id,
                                                                                loss_amount_huf="150000"))
    finally:
        mail.port = port
    assert answer.status_code == 302
    c = register(complaint_id)
    assert c.loss_amount_huf == 150000 and c.escalated_at is None
    assert hubspot_properties(flow)["complaint_loss_amount_huf"] == "150000"  # the edit still reached HubSpot
    assert "a job retries it" in client.get(f"/staff/complaints/{complaint_id}?lang=en").get_data(as_text=True)
    [queued] = audits("complaint.follow_up_queued")
    assert queued.actor == COMPLAINTS and queued.detail["fields"] == ["loss_amount_huf"]
    task = jobs.huey.dequeue()
    assert task is not None and task.name.endswith("follow_up_complaint")
    jobs.huey.execute(task)
    assert register(complaint_id).escalated_at is not None
    assert len([m for m in flow.mail() if m["to"] == ["ugyvezeto@example.com"]]) == 1


def closed_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_submits_at_once_write_the_vendors_once(any_database, sandbox, monkeypatch):
    """Two console saves of the same change at the same moment (a double click on a slow page), on SQLite and on
    PostgreSQL: one changes the register and writes HappyFox and HubSpot; the other finds nothing to change. Reading
    a value is slowed, so that the second save reaches the register while the first is still inside it."""
    import threading
    import time
    fast_vendors()
    parse = complaint_fields.parse

    def slow_parse(*args: Any) -> Any:
        time.sleep(0.5)
        return parse(*args)
    monkeypatch.setattr(complaint_fields, "parse", slow_parse)
    assert run(put_form(purpose="panasz")) == "done"
    with store.session() as s:
        [cid] = s.scalars(select(Complaint.id)).all()
    sandbox.clear_calls()
    barrier, results = threading.Barrier(2), []

    def save() -> None:
        barrier.wait(timeout=10)
        results.append(complaint_sync.staff_edit(cid, {"person_concerned": "Pénztár"}, COMPLAINTS))

    threads = [threading.Thread(target=save) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r.changed for r in results) == [[], ["person_concerned"]]
    assert [w for w in vendor_writes(sandbox) if w[0] == "hubspot"] != []
    assert len([w for w in vendor_writes(sandbox) if w[0] == "hubspot"]) == 1
    assert len([w for w in vendor_writes(sandbox) if w[0] == "happyfox"]) == 1
    assert len(audits("complaint.updated")) == 1
