"""The confirmation SLA: a ticket not confirmed within 2 Hungarian working days of receipt raises one alert (log,
metric, mail to config.sla.alert_to), and `switchboard sla report` lists the breaches."""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core import settings as settings_module
from core import store, workdays
from core.metrics import SLA_BREACHES
from core.models import Audit, Customer, Ticket
from core.settings import SANDBOX_DEFAULTS, Settings
from flows.intake import sla
from tests.conftest import SWITCHBOARD

from .flowkit import fast_vendors, put_form, run, tickets

STAFF = "ugyfelszolgalat-vezeto@example.com"
# Friday 2026-11-20 15:00 in Budapest: after Friday's closing time (14:00), so it counts as received on Monday
# the 23rd; two working days later is Wednesday the 25th, closing at 16:30 Budapest = 15:30 UTC.
RECEIVED = datetime(2026, 11, 20, 14, 0, tzinfo=timezone.utc)
DUE = datetime(2026, 11, 25, 15, 30, tzinfo=timezone.utc)


@pytest.fixture
def alerting(settings, sandbox):
    fast_vendors()
    return with_sla(settings, alert_to=STAFF)


def with_sla(loaded: Settings, **values) -> Settings:
    spec = loaded.config.sla.model_copy(update=values)
    return settings_module.use(Settings(env=loaded.env, config=loaded.config.model_copy(update={"sla": spec})))


def ticket(received: datetime = RECEIVED, confirmed_at: datetime | None = None, channel: str = "phone") -> int:
    with store.session() as s:
        customer = Customer(first_name="Péter", last_name="Szabó")
        s.add(customer)
        s.flush()
        row = Ticket(source_key=f"test:{uuid.uuid4().hex}", customer_id=customer.id, channel=channel,
                     subject="Visszahívást kér", happyfox_display_id=f"#SB-{uuid.uuid4().int % 10**5:05d}",
                     opened_at=received, confirm_due_at=workdays.due_after_working_days(received, 2),
                     confirmed_at=confirmed_at)
        s.add(row)
        s.flush()
        return row.id


def alerts(sandbox) -> list[dict]:
    return [m for m in sandbox.mail() if m["to"] == [STAFF]]


def breaches_counted() -> float:
    return SLA_BREACHES.labels(kind="confirmation")._value.get()


def test_the_deadline_counts_hungarian_working_days_and_hours():
    assert workdays.due_after_working_days(RECEIVED, 2) == DUE


def test_an_unconfirmed_ticket_past_its_deadline_alerts_once(alerting, sandbox, caplog):
    late = ticket()
    on_time = ticket(confirmed_at=RECEIVED + timedelta(hours=1))
    not_yet = ticket(received=DUE)  # due later than the check
    before = breaches_counted()
    with caplog.at_level(logging.WARNING, logger="flows.intake.sla"):
        assert sla.check(now=DUE + timedelta(minutes=1)) == [late]
    assert breaches_counted() == before + 1
    assert any(f"ticket {late} missed" in r.getMessage() for r in caplog.records)
    [mail] = alerts(sandbox)
    with store.session() as s:
        row = s.get(Ticket, late)
        assert row.sla_alerted_at is not None
        assert row.happyfox_display_id in mail["subject"] and "2026-11-25 16:30" in mail["text"]  # Budapest time
        assert s.scalars(select(Audit.action).where(Audit.ticket_id == late)).all() == ["sla.breached"]
        assert s.get(Ticket, on_time).sla_alerted_at is None and s.get(Ticket, not_yet).sla_alerted_at is None
    assert sla.check(now=DUE + timedelta(hours=2)) == []
    assert len(alerts(sandbox)) == 1 and breaches_counted() == before + 1


def test_a_late_confirmation_is_still_a_breach(alerting, sandbox):
    late = ticket(confirmed_at=DUE + timedelta(hours=1))
    assert [b.ticket_id for b in sla.breaches(now=DUE + timedelta(days=1))] == [late]
    assert sla.check(now=DUE + timedelta(days=1)) == [late]


def test_a_mail_that_fails_is_alerted_again_on_the_next_check(alerting, sandbox):
    late = ticket()
    with socket.socket() as probe:  # a port nobody listens on: the SMTP connection is refused
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    working = settings_module.get()
    settings_module.use(Settings(env=working.env.model_copy(update={"smtp_port": closed_port}),
                                 config=working.config))
    fast_vendors()
    with pytest.raises(Exception):
        sla.check(now=DUE + timedelta(hours=1))
    with store.session() as s:
        assert s.get(Ticket, late).sla_alerted_at is None
    settings_module.use(working)
    assert sla.check(now=DUE + timedelta(hours=1)) == [late]
    assert len(alerts(sandbox)) == 1


def test_without_alert_to_the_breach_is_logged_and_counted_but_not_mailed(settings, sandbox):
    with_sla(settings, alert_to=None)  # the shipped YAML names a recipient
    late = ticket()
    before = breaches_counted()
    assert sla.check(now=DUE + timedelta(hours=1)) == [late]
    assert breaches_counted() == before + 1 and sandbox.mail() == []


def test_a_form_ticket_confirmed_at_intake_never_breaches(alerting, sandbox):
    run(put_form("gyors@example.com"))
    [made] = tickets()
    assert made.confirmed_at is not None and made.confirm_due_at > made.opened_at
    assert sla.check(now=made.confirm_due_at + timedelta(days=1)) == []
    assert sla.check_sla.call_local() == 0


def test_very_old_breaches_are_reported_but_not_mailed(alerting, sandbox):
    old = ticket(received=RECEIVED - timedelta(days=90))
    assert sla.check(now=DUE) == []
    assert [b.ticket_id for b in sla.breaches(now=DUE)] == [old]


def test_sla_report_lists_the_breaches(alerting, sandbox, tmp_path):
    late = ticket(received=RECEIVED - timedelta(days=14))  # due Wednesday 2026-11-11, before today
    ticket(received=RECEIVED - timedelta(days=14), confirmed_at=RECEIVED - timedelta(days=14))  # in time
    sla.check(now=datetime.now(timezone.utc))
    env = {**os.environ, "DATABASE_URL": settings_module.get().env.database_url, "LOG_LEVEL": "WARNING",
           "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"), "HAPPYFOX_BASE_URL": sandbox.base_url,
           "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "none.json")}
    env.update({name.upper(): value for name, value in SANDBOX_DEFAULTS.items()})
    command = list(SWITCHBOARD)
    done = subprocess.run(command + ["sla", "report"], capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 breach(es)" in done.stdout
    lines = [line for line in done.stdout.splitlines() if f" {late} " in line]
    assert lines and "not yet" in lines[0] and "2026-11-11 16:30" in lines[0]
    assert "Szabó" not in done.stdout  # no personal data
    later = subprocess.run(command + ["sla", "report", "--since", "2026-11-12"], capture_output=True, text=True,
                           timeout=60, env=env, cwd=tmp_path)
    assert "0 breach(es)" in later.stdout
