"""Data-subject requests (flows/privacy/requests.py) over the sandbox: recorded from the CLI, the admin API and the
privacy mailbox; nothing erased or exported before the identity check; the deadline of one month, extended once;
overdue and nearly due requests alerted and listed; a forged privacy mail erases nothing."""
from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from core import embedded, store
from core.models import Alert, Audit, Customer, Erasure, InboxEvent, PrivacyRequest
from flows import vendors
from flows.privacy import erasure, requests
from sandbox.gmail import add_message
from tests.conftest import SWITCHBOARD

from .flowkit import put_form, run
from .privacykit import EMAIL, OTHER_EMAIL, database_traces, present_everywhere, quick, unexplained_traces

PRIVACY = "adatvedelem@example.com"
NOW = datetime.now(timezone.utc)


@pytest.fixture
def flow(settings, sandbox):
    quick()
    return sandbox


@pytest.fixture
def cli(settings, sandbox, tmp_path):
    """`switchboard ...` as an operator runs it beside `switchboard run`: a subprocess on this test's database that
    finds the sandbox through the embedded run's record (this test process plays the running `switchboard run`)."""
    data = tmp_path / "data"
    data.mkdir()
    embedded.record(data, "http://127.0.0.1:8000", sandbox.base_url, sandbox.smtp_port)
    env = {name: value for name, value in os.environ.items() if not name.endswith(("_BASE_URL", "_TOKEN", "_KEY"))}
    env.update({"DATABASE_URL": settings.env.database_url, "SWITCHBOARD_DATA_DIR": str(data), "LOG_LEVEL": "WARNING",
                "SECRET_KEY": settings.env.secret("secret_key") or ""})

    def switchboard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(SWITCHBOARD) + list(args), capture_output=True, text=True, timeout=120, env=env,
                              cwd=tmp_path)
    return switchboard


def confirm_all(request_id: int) -> str:
    """Staff confirm every manual task (the shipped YAML's IT contractor and mobile carrier); the state after."""
    state = requests.state_of(request_id)
    for task in requests.tasks(request_id):
        if not task["confirmed_at"]:
            state = requests.confirm_task(request_id, task["processor"], "ops@example.com", "done by ticket 42")
    return state


def row(request_id: int) -> PrivacyRequest:
    with store.session() as s:
        found = s.get(PrivacyRequest, request_id)
        s.expunge_all()
    assert found is not None
    return found


def mail_to(sandbox, address: str) -> list[dict]:
    return [m for m in sandbox.mail() if address in m["to"]]


def privacy_mail(sandbox, sender: str, subject: str, body: str) -> str:
    return add_message(sandbox.running.sandbox, sender, f"Adatvédelem <{PRIVACY}>", subject, body)


def hubspot_contacts(sandbox) -> list[dict]:
    return list(sandbox.state("hubspot")["contacts"].values())


# ---------------------------------------------------------------- the privacy mailbox

def test_a_forged_privacy_mail_erases_nothing_and_tells_the_real_person(flow):
    assert run(put_form(EMAIL)) == "done"
    contacts_before = len(hubspot_contacts(flow))
    privacy_mail(flow, f"Szabó Erika <{EMAIL}>", "Törlési kérelem", "Kérem, töröljék minden adatomat.")
    add_message(flow.running.sandbox, OTHER_EMAIL, "support@example.com", "Más", "Nem az adatvédelemnek.")

    [inbox_id] = requests.poll_mailbox()
    assert requests.poll_mailbox() == []  # read twice: one event
    assert run(inbox_id) == "done"
    [request] = requests.listing()
    assert (request.kind, request.state, request.channel) == ("erasure", "awaiting_verification", "mail")
    assert request.due_at.date() == (row(request.id).received_at + relativedelta(months=1)).date()
    with store.session() as s:
        customer_ids = list(s.scalars(select(Customer.id)))
    assert request.customer_id in customer_ids and len(customer_ids) == 1  # the sender is our customer

    # The acknowledgement goes to the address the mail claims, so a forged one reaches the real person.
    [ack] = mail_to(flow, EMAIL)[-1:]
    assert "Adatvédelmi kérelmét megkaptuk" in ack["subject"] and f"{request.id}." in ack["subject"]
    assert "küldte ezt a kérelmet" in ack["text"] and request.due_at.date().isoformat() in ack["text"]

    # Nothing is erased: not by running the event again, nor by the sweep, nor while unverified.
    assert requests.on_privacy_mail(next(iter([_event(inbox_id)]))) == request.id
    requests.requests_sweep.call_local()
    with pytest.raises(requests.RequestError, match="only a verified request runs"):
        requests.run(request.id)
    with pytest.raises(requests.RequestError, match="verify it first"):
        requests.complete(request.id)
    with store.session() as s:
        assert s.scalars(select(Erasure)).all() == []
        assert s.get(Customer, request.customer_id).erased_at is None
    assert len(hubspot_contacts(flow)) == contacts_before and database_traces()
    assert len(mail_to(flow, EMAIL)) == 2  # the form's confirmation and one acknowledgement, not two

    requests.refuse(request.id, "identity not confirmed: the person says they did not write")
    assert row(request.id).state == "refused" and row(request.id).reply_to is None
    with pytest.raises(requests.RequestError, match="refused"):
        requests.verify(request.id, "dpo@example.com", "known_address")


def _event(inbox_id: int):
    from flows import inbox
    with store.session() as s:
        stored = s.get(InboxEvent, inbox_id)
        return inbox.Event(stored.id, stored.source, stored.kind, stored.event_key, stored.payload,
                           stored.received_at, retry=True)


def test_mail_kind_and_language_are_told_and_staff_name_an_unclear_kind(flow):
    privacy_mail(flow, "john.smith@example.com", "Subject access request",
                 "Please send me a copy of the data you hold about me.")
    privacy_mail(flow, "kata.kovacs@example.com", "Kérdés", "Üdvözlöm, érdeklődnék.")
    privacy_mail(flow, f"Support <{vendors.get().settings.env.gmail_user}>", "Re: Törlés", "Visszaigazolás")
    privacy_mail(flow, "nem egy cim", "Törlés", "...")
    outcomes = {}
    for inbox_id in requests.poll_mailbox():
        outcomes[inbox_id] = run(inbox_id)
    assert sorted(outcomes.values()) == ["dead", "done", "done", "done"]  # the unreadable sender only
    with store.session() as s:
        dead = s.scalar(select(InboxEvent).where(InboxEvent.status == "dead"))
        assert dead.last_error.endswith(("invalid privacy mail payload: from not_one_mailbox",
                                         "invalid privacy mail payload: from invalid_address"))
    kinds = {r.kind: r for r in requests.listing()}
    assert set(kinds) == {"access", "unspecified"}  # our own mail copied there is passed by
    assert row(kinds["access"].id).language == "en"
    [english] = mail_to(flow, "john.smith@example.com")
    assert "We have received your data protection request" in english["subject"]
    [hungarian] = mail_to(flow, "kata.kovacs@example.com")
    assert "Adatvédelmi kérelmét megkaptuk" in hungarian["subject"]

    unclear = kinds["unspecified"].id
    with pytest.raises(requests.RequestError, match="name its kind"):
        requests.verify(unclear, "dpo@example.com", "known_address")
    requests.verify(unclear, "dpo@example.com", "known_address", kind="rectification")
    assert row(unclear).kind == "rectification" and row(unclear).verified_by == "dpo@example.com"
    assert requests.run(unclear) == "verified"  # staff rectify by hand
    with pytest.raises(requests.RequestError, match="say what was done"):
        requests.complete(unclear)
    assert confirm_all(unclear) == "verified"  # still waits for staff's note
    requests.complete(unclear, "address corrected in HubSpot and HappyFox")
    assert row(unclear).state == "done"


def test_a_gmail_outage_leaves_the_mail_for_the_next_poll(flow):
    privacy_mail(flow, EMAIL, "Törlés", "Töröljék az adataimat.")
    flow.fault(service="gmail", status=503, times=10)
    from connectors.errors import Unavailable
    with pytest.raises(Unavailable):
        requests.poll_mailbox()
    flow.http.delete("/_sandbox/faults").raise_for_status()
    assert len(requests.poll_mailbox()) == 1


# ---------------------------------------------------------------- verified requests run

def test_a_verified_erasure_runs_everywhere_and_completes_with_its_receipt(flow):
    present_everywhere(flow)
    request_id = requests.add("erasure", email=EMAIL, channel="staff", actor="cli")
    assert row(request_id).state == "awaiting_verification" and database_traces()
    requests.verify(request_id, "dpo@example.com", "id_document")
    assert [t["processor"] for t in requests.tasks(request_id)] == ["it_contractor", "mobile_carrier"]
    assert requests.run(request_id) == "verified"  # erased everywhere with an API; the manual tasks are open
    with pytest.raises(requests.RequestError, match="manual tasks not confirmed: it_contractor, mobile_carrier"):
        requests.complete(request_id)
    assert requests.confirm_task(request_id, "it_contractor", "ops@example.com") == "verified"
    with pytest.raises(requests.RequestError, match="no task at 'carrier'"):
        requests.confirm_task(request_id, "carrier", "ops@example.com")
    assert requests.confirm_task(request_id, "mobile_carrier", "ops@example.com", "carrier ticket 7") == "done"
    done = row(request_id)
    assert done.erasure_id is not None and done.completed_at is not None
    assert set(done.outcome["processors"]) == {"hubspot", "happyfox", "aircall", "gmail", "switchboard"}
    assert [(m["processor"], m["confirmed_by"]) for m in done.outcome["manual"]] == [
        ("it_contractor", "ops@example.com"), ("mobile_carrier", "ops@example.com")]
    # The person is told, in their language, what was done where and what the vendors keep; then we forget
    # where to write.
    [told] = [m for m in mail_to(flow, EMAIL) if "teljesítettük" in m["subject"]]
    for words in ("HubSpot", "HappyFox", "Aircall", "informatikai üzemeltető", "mobilszolgáltató", "90 napig",
                  "archivált hívásnaplójában"):
        assert words in told["text"], words
    assert done.reply_to is None and done.notified_at is not None
    assert unexplained_traces(flow) == [] and database_traces() == []
    with store.session() as s:
        actions = [a.action for a in s.scalars(select(Audit).where(Audit.action.like("request.%")).order_by(Audit.id))]
        details = json.dumps([a.detail for a in s.scalars(select(Audit))])
    assert actions == ["request.received", "request.verified", "request.task_confirmed", "request.task_confirmed",
                       "request.completed", "request.notified"]
    assert EMAIL not in details


def test_an_erasure_with_a_failing_step_completes_when_the_step_passes(flow):
    assert run(put_form(EMAIL)) == "done"
    request_id = requests.add("erasure", email=EMAIL)
    requests.verify(request_id, "dpo@example.com", "known_address")
    flow.fault(service="happyfox", status=500, times=50)
    assert requests.run(request_id) == "verified"
    assert confirm_all(request_id) == "verified"  # the erasure is not done yet
    requests.requests_sweep.call_local()
    assert row(request_id).state == "verified"
    flow.http.delete("/_sandbox/faults").raise_for_status()
    assert erasure.run(row(request_id).erasure_id) == "done"
    requests.requests_sweep.call_local()
    assert row(request_id).state == "done"


def test_a_verified_access_request_exports_and_an_incomplete_export_keeps_it_open(flow, tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path))
    assert run(put_form(EMAIL)) == "done"
    request_id = requests.add("access", email=EMAIL)
    requests.verify(request_id, "dpo@example.com", "known_address")
    flow.fault(service="aircall", status=500, times=50)
    assert requests.run(request_id) == "verified"
    assert row(request_id).outcome["complete"] is False and row(request_id).outcome["errors"] == ["aircall"]
    flow.http.delete("/_sandbox/faults").raise_for_status()
    assert requests.run(request_id) == "verified" and confirm_all(request_id) == "done"
    files = row(request_id).outcome["export"]
    assert all((tmp_path / "exports" / name).is_file() for name in files)
    assert EMAIL in (tmp_path / "exports" / files[0]).read_text()


def test_a_verified_withdrawal_records_the_withdrawn_consent_and_erases(flow):
    assert run(put_form(EMAIL)) == "done"
    request_id = requests.add("withdrawal", email=EMAIL)
    requests.verify(request_id, "dpo@example.com", "known_address")
    assert requests.run(request_id) == "verified" and confirm_all(request_id) == "done"
    with store.session() as s:
        customer = s.get(Customer, row(request_id).customer_id)
        assert customer.consent_withdrawn_at is not None and customer.erased_at is not None
    assert row(request_id).outcome["reason"] == "consent_withdrawn" and row(request_id).outcome["kept"] == []


def test_bad_input_is_refused_in_words(flow):
    with pytest.raises(requests.RequestError, match="unknown kind"):
        requests.add("forget-me", email=EMAIL)
    with pytest.raises(ValueError):
        requests.add("erasure", email="a@b.hu, c@d.hu")
    with pytest.raises(requests.RequestError, match="valid email address or phone"):
        requests.add("erasure", phone="not a number")
    request_id = requests.add("access", email=EMAIL)
    with pytest.raises(requests.RequestError, match="unknown method"):
        requests.verify(request_id, "dpo", "a hunch")
    with pytest.raises(requests.RequestError, match="who verified"):
        requests.verify(request_id, " ", "known_address")
    with pytest.raises(LookupError):
        requests.verify(request_id + 100, "dpo", "known_address")


# ---------------------------------------------------------------- deadlines

def test_deadlines_one_month_extended_once_alerted_once_and_listed(flow, cli):
    soon = requests.add("access", email="soon@example.com", received_at=NOW - timedelta(days=26))
    late = requests.add("erasure", email="late@example.com", received_at=NOW - timedelta(days=40))
    later = requests.add("objection", email="later@example.com", received_at=NOW - timedelta(days=2))
    assert row(soon).due_at == row(soon).received_at + relativedelta(months=1)

    raised = requests.check_deadlines()
    assert len(raised) == 2 and requests.check_deadlines() == []  # once per request and deadline
    with store.session() as s:
        found = {a.kind: a for a in s.scalars(select(Alert))}
        assert found["request.due"].detail["request_id"] == soon
        assert found["request.overdue"].detail["request_id"] == late
        assert found["request.overdue"].command == f"switchboard requests show {late}"
        assert "@" not in json.dumps([a.detail for a in found.values()])

    listed = cli("requests", "list")
    assert listed.returncode == 3, listed.stderr
    assert "OVERDUE" in listed.stdout and "due soon" in listed.stdout and "3 request(s), 1 overdue" in listed.stdout
    assert "@" not in listed.stdout

    with pytest.raises(requests.RequestError, match="reason"):
        requests.extend(late, " ")
    new_due = requests.extend(late, "many processors to reach")
    assert new_due == row(late).received_at + relativedelta(months=3) and new_due > NOW
    with pytest.raises(requests.RequestError, match="extended already"):
        requests.extend(late, "again")
    assert requests.check_deadlines() == []  # due in seven weeks now
    shown = cli("requests", "list", "--due-within", "30")
    assert shown.returncode == 0 and "2 request(s), 0 overdue" in shown.stdout, shown.stdout
    assert later not in [r.id for r in requests.listing(due_within_days=7)]


def test_cli_add_verify_now_and_complete(flow, cli):
    assert run(put_form(EMAIL)) == "done"
    added = cli("requests", "add", "--type", "erasure", "--email", EMAIL, "--channel", "staff")
    assert added.returncode == 0, added.stderr
    request_id = int(added.stdout.split()[1])
    assert "awaiting verification" in added.stdout
    early = cli("requests", "complete", str(request_id))
    assert early.returncode == 1 and "verify it first" in early.stderr
    verified = cli("requests", "verify", str(request_id), "--by", "dpo@example.com", "--method", "id_document",
                   "--now")
    assert verified.returncode == 0, verified.stderr
    assert f"request {request_id}: verified" in verified.stdout
    listed = cli("requests", "tasks", str(request_id))
    assert "it_contractor" in listed.stdout and "2 of 2 task(s) open" in listed.stdout
    assert cli("requests", "confirm", str(request_id), "it_contractor", "--by", "ops").returncode == 0
    last = cli("requests", "confirm", str(request_id), "mobile_carrier", "--by", "ops", "--note", "ticket 9")
    assert last.returncode == 0 and "done" in last.stdout, last.stderr
    shown = json.loads(cli("requests", "show", str(request_id)).stdout)
    assert shown["state"] == "done" and shown["verification_method"] == "id_document"
    assert EMAIL not in json.dumps(shown)
    bad = cli("requests", "add", "--type", "erasure", "--email", "a@b.hu, c@d.hu")
    assert bad.returncode == 2
    assert cli("requests", "verify", "999", "--by", "x", "--method", "in_person").returncode == 1


# ---------------------------------------------------------------- the admin API

def test_admin_api_records_verifies_and_refuses_out_of_order(flow, client, settings):
    token = {"Authorization": f"Bearer {settings.env.secret('admin_token')}"}
    assert client.post("/admin/requests", json={"type": "erasure", "email": EMAIL}).status_code == 401
    bad = client.post("/admin/requests", json={"type": "forget", "email": "a@b.hu, c@d.hu"}, headers=token)
    assert bad.status_code == 400 and set(bad.get_json()["fields"]) == {"type", "email"}
    made = client.post("/admin/requests", json={"type": "erasure", "email": EMAIL}, headers=token)
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["state"] == "awaiting_verification" and body["channel"] == "admin" and EMAIL not in json.dumps(body)
    request_id = body["id"]
    assert client.post(f"/admin/requests/{request_id}/complete", json={}, headers=token).status_code == 409
    assert client.post(f"/admin/requests/{request_id}/verify", json={"verified_by": "dpo"},
                       headers=token).status_code == 400
    assert client.post("/admin/requests/99999/verify", json={"verified_by": "dpo", "method": "in_person"},
                       headers=token).status_code == 404
    verified = client.post(f"/admin/requests/{request_id}/verify",
                           json={"verified_by": "dpo@example.com", "method": "in_person"}, headers=token)
    assert verified.status_code == 202 and verified.get_json()["state"] == "verified"
    listed = client.get("/admin/requests", headers=token).get_json()
    assert [r["id"] for r in listed] == [request_id] and listed[0]["overdue"] is False
    assert client.post(f"/admin/requests/{request_id}/extend", json={}, headers=token).status_code == 400
    assert client.post(f"/admin/requests/{request_id}/extend", json={"reason": "complex"},
                       headers=token).status_code == 200
    with store.session() as s:
        actors = {a.actor for a in s.scalars(select(Audit).where(Audit.action.like("request.%")))}
    assert actors == {"script:admin"}


def test_the_completion_mail_is_english_for_an_english_request_and_sent_by_the_sweep_after_an_outage(flow, monkeypatch):
    from connectors.errors import Unavailable
    assert run(put_form(EMAIL)) == "done"
    request_id = requests.add("restriction", email=EMAIL, language="en")
    requests.verify(request_id, "dpo@example.com", "in_person")
    mailer = vendors.get().mail
    real_send = mailer.send

    def down(*args, **kwargs):
        raise Unavailable("smtp", "connection refused")
    monkeypatch.setattr(mailer, "send", down)
    assert requests.run(request_id) == "verified" and confirm_all(request_id) == "done"
    assert row(request_id).reply_to == EMAIL and row(request_id).notified_at is None  # kept until told
    monkeypatch.setattr(mailer, "send", real_send)
    requests.requests_sweep.call_local()
    [told] = [m for m in mail_to(flow, EMAIL) if "has been completed" in m["subject"]]
    assert "processing restricted" in told["text"] and "IT contractor" in told["text"]
    assert "90 days" not in told["text"]  # nothing was erased: no vendor limits to explain
    assert row(request_id).reply_to is None
    requests.requests_sweep.call_local()
    assert len([m for m in mail_to(flow, EMAIL) if "has been completed" in m["subject"]]) == 1


def test_an_erasure_outside_a_request_clears_the_persons_other_requests_reply_address(flow):
    assert run(put_form(EMAIL)) == "done"
    waiting = requests.add("access", email=EMAIL)
    assert row(waiting).reply_to == EMAIL
    erasure_id = erasure.request(email=EMAIL, reason="retention")
    assert erasure.run(erasure_id) == "done"  # its final scan finds the address nowhere
    assert row(waiting).reply_to is None and database_traces() == []
