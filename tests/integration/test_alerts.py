"""Failures are heard (flows/alerts.py): a dead inbox event, a failed erasure step, a reconcile that cannot mend, and
the SLA deadlines each raise one alert, delivered by a job to the sandbox's SMTP and to a loopback JSON webhook,
once per target however often the failure repeats or the target fails first, and never with personal data."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from core import settings as settings_module
from core import store
from core.models import Alert, AlertDelivery
from core.settings import AlertsSpec, AlertTargetSpec
from flows import alerts, dispatch
from flows.closure import reconcile
from flows.intake import sla
from flows.privacy import erasure

from .flowkit import fast_vendors, put_form, queue, row  # noqa: F401 - queue is a fixture
from .test_inbox_cli import cli  # noqa: F401 - a fixture: `switchboard ...` on this test's database

LEAD = "ugyfelszolgalat-vezeto@example.com"
CUSTOMER_EMAIL, CUSTOMER_PHONE = "kata.kovacs@example.com", "+36301234567"


class Hook:
    """A loopback JSON webhook receiver; answers the statuses in `answers` in turn, then 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answers: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = hook.answers.pop(0) if hook.answers else 200
                if status < 300:
                    hook.received.append(json.loads(data))
                    hook.headers.append(dict(self.headers))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook(settings: Any, queue: Any) -> Iterator[Hook]:
    """A webhook target beside the shipped YAML's mail target (the support lead)."""
    receiver = Hook()
    targets = [*settings.config.alerts.targets, AlertTargetSpec(webhook_url=receiver.url)]
    config = settings.config.model_copy(update={"alerts": AlertsSpec(targets=targets, language="en")})
    settings_module.use(settings.model_copy(update={"config": config}))
    yield receiver
    receiver.server.shutdown()
    settings_module.use(settings)


def dead_form(sandbox: Any) -> int:
    """A form HubSpot refuses for good (a 400): its inbox event ends dead on the first attempt."""
    sandbox.fault(service="hubspot", method="POST", path="/crm/v3/objects/contacts/batch/upsert", status=400,
                  times=100)
    inbox_id = put_form(CUSTOMER_EMAIL, phone=CUSTOMER_PHONE)
    assert dispatch.run(inbox_id) == "dead"
    return inbox_id


def the_alerts() -> list[Alert]:
    with store.session() as s:
        found = list(s.scalars(select(Alert).order_by(Alert.id)))
        s.expunge_all()
        return found


def deliveries() -> dict[str, str]:
    with store.session() as s:
        return {d.target.split(":")[0]: d.status for d in s.scalars(select(AlertDelivery))}


def lead_mail(sandbox: Any) -> list[dict[str, Any]]:
    return [m for m in sandbox.mail() if LEAD in m["to"]]


def test_the_shipped_yaml_mails_the_support_lead() -> None:
    from core.settings import DEFAULT_CONFIG, load_config
    targets = load_config(DEFAULT_CONFIG).alerts.targets
    assert [t.email for t in targets] == [LEAD]


def test_a_dead_event_is_mailed_and_posted_once_with_where_to_act_and_no_personal_data(hook, sandbox, queue):
    inbox_id = dead_form(sandbox)
    [alert] = the_alerts()
    assert (alert.kind, alert.key, alert.command) == ("inbox.dead", f"inbox.dead:{inbox_id}",
                                                      f"switchboard inbox replay {inbox_id}")
    assert alert.url and alert.url.endswith(f"/staff/inbox/{inbox_id}")
    # The receiver's side stays fast: the delivery is a queued job, not done in the flow.
    assert sandbox.mail() == [] and hook.received == [] and queue.pending_count() >= 1

    assert alerts.deliver_alert.call_local(alert.id) == {f"mail:{LEAD}": "sent",
                                                         AlertTargetSpec(webhook_url=hook.url).key: "sent"}
    [mail] = lead_mail(sandbox)
    assert f"switchboard inbox replay {inbox_id}" in mail["text"] and "Inbound event is dead" in mail["subject"]
    assert "hubspot HTTP 400" in mail["text"]
    [posted] = hook.received
    assert posted["alert"]["kind"] == "inbox.dead" and posted["alert"]["detail"]["inbox_id"] == inbox_id
    assert posted["alert"]["url"] == alert.url and f"replay {inbox_id}" in posted["text"]
    assert hook.headers[0]["Idempotency-Key"] == f"switchboard-alert-{alert.id}"
    everything = json.dumps(posted) + mail["text"] + mail["html"] + mail["subject"]
    for personal in (CUSTOMER_EMAIL, CUSTOMER_PHONE, "Kovács", "Kata"):
        assert personal not in everything
    assert "@" not in json.dumps(posted)

    # Delivered: running the job again sends nothing more.
    assert alerts.deliver_alert.call_local(alert.id) == {}
    assert len(lead_mail(sandbox)) == 1 and len(hook.received) == 1


def test_the_same_failure_twice_is_one_alert(hook, sandbox, queue):
    inbox_id = dead_form(sandbox)
    from flows import inbox
    inbox.replay([inbox_id])
    assert dispatch.run(inbox_id) == "dead"  # dies again
    [alert] = the_alerts()
    assert alert.raised == 2
    alerts.deliver_alert.call_local(alert.id)
    alerts.sweep_alerts.call_local()
    assert len(lead_mail(sandbox)) == 1 and len(hook.received) == 1


def test_a_target_down_then_up_gets_the_alert_once(hook, sandbox, queue):
    hook.answers = [503, 503]
    dead_form(sandbox)
    [alert] = the_alerts()
    with pytest.raises(alerts.DeliveryFailed):
        alerts.deliver_alert.call_local(alert.id)
    # The mail went out at the first try and is not sent again while the webhook is retried.
    assert len(lead_mail(sandbox)) == 1 and hook.received == []
    assert deliveries() == {"mail": "sent", "webhook": "failed"}
    with store.session() as s:
        assert s.scalar(select(AlertDelivery.last_error).where(AlertDelivery.status == "failed")) == "HTTP 503"
    with pytest.raises(alerts.DeliveryFailed):
        alerts.deliver_alert.call_local(alert.id)
    assert alerts.deliver_alert.call_local(alert.id) == {AlertTargetSpec(webhook_url=hook.url).key: "sent"}
    assert alerts.deliver_alert.call_local(alert.id) == {}
    assert len(hook.received) == 1 and len(lead_mail(sandbox)) == 1
    assert deliveries() == {"mail": "sent", "webhook": "sent"}


def test_an_unreachable_webhook_fails_with_a_reason_and_the_sweep_queues_it_again(hook, sandbox, queue):
    hook.server.shutdown()
    hook.server.server_close()
    dead_form(sandbox)
    [alert] = the_alerts()
    with pytest.raises(alerts.DeliveryFailed):
        alerts.deliver(alert.id)
    with store.session() as s:
        failed = s.scalars(select(AlertDelivery).where(AlertDelivery.status == "failed")).one()
        assert failed.last_error == "ConnectError" and failed.attempts == 1
        from datetime import datetime, timedelta, timezone
        failed.updated_at = datetime.now(timezone.utc) - timedelta(minutes=10)
    queue.flush()
    assert alerts.sweep_alerts.call_local() == 1 and queue.pending_count() == 1


def test_a_failed_erasure_step_raises_one_alert(hook, sandbox, queue):
    from .flowkit import run  # the customer comes from a processed form
    inbox_id = put_form(CUSTOMER_EMAIL)
    assert run(inbox_id) == "done"
    fast_vendors()
    sandbox.fault(service="happyfox", method="DELETE", status=403, times=100)
    sandbox.fault(service="happyfox", method="POST", status=403, times=100)
    sandbox.fault(service="happyfox", method="PUT", status=403, times=100)
    erasure_id = erasure.request(email=CUSTOMER_EMAIL)
    erasure.run(erasure_id)
    erasure.run(erasure_id)  # fails again: still one alert
    found = [a for a in the_alerts() if a.kind == "erasure.step_failed"]
    assert len(found) == 1 and found[0].raised == 2
    assert found[0].detail["processor"] == "happyfox" and found[0].detail["erasure_id"] == erasure_id
    assert found[0].command == f"switchboard erasure status {erasure_id}"
    alerts.deliver(found[0].id)
    assert CUSTOMER_EMAIL not in json.dumps(hook.received)


def test_a_reconcile_that_cannot_mend_raises_an_alert(hook, sandbox, queue):
    from connectors.errors import NotFound
    report = reconcile.ReconcileResult(since=reconcile._now())
    for _ in range(2):  # the next run meets the same ticket: still one alert
        with reconcile._repairing(report, "happyfox", 42):
            raise NotFound("happyfox", "no such ticket", status=404)
    [alert] = the_alerts()
    assert alert.kind == "reconcile.unmended" and alert.command == "switchboard sync" and alert.raised == 2
    assert alert.detail == {"system": "happyfox", "remote_id": "42", "reason": "NotFound (HTTP 404)"}


def test_an_sla_alert_reaches_the_webhook_without_a_second_mail_to_the_lead(hook, sandbox, queue):
    from datetime import datetime, timedelta, timezone

    from .flowkit import run
    inbox_id = put_form(CUSTOMER_EMAIL)
    assert run(inbox_id) == "done"
    from core.models import Ticket
    now = datetime.now(timezone.utc)
    with store.session() as s:
        ticket = s.scalars(select(Ticket)).one()
        ticket.confirm_due_at, ticket.confirmed_at = now - timedelta(hours=1), None
    assert len(sla.check(now)) == 1
    [alert] = the_alerts()
    assert alert.kind == "sla.confirmation"
    assert deliveries() == {"webhook": "pending"}  # the lead got the SLA mail itself
    alerts.deliver(alert.id)
    assert hook.received[0]["alert"]["detail"]["ticket_id"] == ticket.id


def test_alert_details_never_keep_an_address_or_a_phone_number(settings):
    assert alerts._clean({"a": CUSTOMER_EMAIL, "b": CUSTOMER_PHONE, "c": 7, "d": "HTTP 503"}) == {
        "a": "[removed]", "b": "[removed]", "c": 7, "d": "HTTP 503"}


def test_a_webhook_url_from_the_environment(hook, sandbox, queue, monkeypatch):
    """Slack's and Teams' URLs are secrets: the YAML names the variable, the URL is read at delivery."""
    current = settings_module.get()
    target = AlertTargetSpec(webhook_url_env="ALERTS_TEST_WEBHOOK_URL")
    config = current.config.model_copy(update={"alerts": AlertsSpec(targets=[target])})
    settings_module.use(current.model_copy(update={"config": config}))
    dead_form(sandbox)
    [alert] = the_alerts()
    with pytest.raises(alerts.DeliveryFailed):
        alerts.deliver(alert.id)  # not set yet: failed, with the variable's name as the reason
    with store.session() as s:
        assert s.scalars(select(AlertDelivery)).one().last_error == "ALERTS_TEST_WEBHOOK_URL is not set"
    monkeypatch.setenv("ALERTS_TEST_WEBHOOK_URL", hook.url)
    assert alerts.deliver(alert.id) == {"env:ALERTS_TEST_WEBHOOK_URL": "sent"}
    assert len(hook.received) == 1 and sandbox.mail() == []


def test_a_target_needs_exactly_one_destination() -> None:
    with pytest.raises(ValueError):
        AlertTargetSpec(email="a@example.com", webhook_url="http://127.0.0.1/x")
    with pytest.raises(ValueError):
        AlertTargetSpec()


def test_the_cli_lists_alerts_and_sends_the_undelivered(cli, sandbox, queue):
    run_cli = cli
    inbox_id = dead_form(sandbox)
    listed = run_cli("alerts", "list")
    assert listed.returncode == 0, listed.stderr
    assert "inbox.dead" in listed.stdout and f"switchboard inbox replay {inbox_id}" in listed.stdout
    assert "pending" in listed.stdout and CUSTOMER_EMAIL not in listed.stdout
    sent = run_cli("alerts", "send")
    assert sent.returncode == 0 and "1 delivered, 0 still failing" in sent.stdout
    assert len(lead_mail(sandbox)) == 1
    assert "sent" in run_cli("alerts", "list").stdout
    assert "0 delivered" in run_cli("alerts", "send").stdout and len(lead_mail(sandbox)) == 1


def test_raised_twice_is_one_alert_on_each_database(any_database):
    """The unique key is the dedup, on SQLite and on PostgreSQL (whose failed INSERT ends its transaction)."""
    first = alerts.raise_alert("inbox.dead", "inbox.dead:7", command="switchboard inbox replay 7", inbox_id=7)
    again = alerts.raise_alert("inbox.dead", "inbox.dead:7", command="switchboard inbox replay 7", inbox_id=7)
    assert first is not None and again is None
    with store.session() as s:
        assert s.scalars(select(Alert)).one().raised == 2
        assert s.scalars(select(AlertDelivery)).one().target == f"mail:{LEAD}"
    from sqlalchemy.exc import IntegrityError
    with pytest.raises(IntegrityError):  # the database itself refuses a second row of the key
        with store.session() as s:
            s.add(Alert(key="inbox.dead:7", kind="inbox.dead", detail={}))
