"""`switchboard inbox list|replay` and `switchboard ticket create`, run as an operator runs them: the console
script in a subprocess, on the test's database, with the connectors pointed at the sandbox."""
from __future__ import annotations

import os
import subprocess

import pytest

from core import jobs, store
from core.jobs import make_huey
from core.models import InboxEvent
from core.settings import SANDBOX_DEFAULTS
from tests.conftest import SWITCHBOARD

from .flowkit import fast_vendors, fixture, objects, put, put_form, row, run, tickets


@pytest.fixture
def cli(settings, sandbox, tmp_path):
    """Run `switchboard ...` against this test's database and the sandbox (as a deployment with credentials)."""
    env = {**os.environ, "DATABASE_URL": settings.env.database_url, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sandbox.smtp_port),
           "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "none.json"), "LOG_LEVEL": "WARNING"}
    env.update({name.upper(): value for name, value in SANDBOX_DEFAULTS.items()})
    env.update({f"{vendor}_BASE_URL": sandbox.base_url for vendor in ("HUBSPOT", "HAPPYFOX", "AIRCALL", "GMAIL")})

    def switchboard(*args: str) -> subprocess.CompletedProcess[str]:
        command = list(SWITCHBOARD)
        return subprocess.run(command + list(args), capture_output=True, text=True, timeout=60, env=env,
                              cwd=tmp_path)
    switchboard.data_dir = tmp_path / "data"  # type: ignore[attr-defined]
    return switchboard


def dead_form(sandbox, email: str) -> int:
    sandbox.fault(service="happyfox", method="POST", path="/api/1.1/json/tickets/", status=400, times=1)
    inbox_id = put_form(email)
    assert run(inbox_id) == "dead"
    return inbox_id


def test_list_filters_by_status_and_shows_no_personal_data(cli, sandbox):
    fast_vendors()
    dead = dead_form(sandbox, "dead.person@example.com")
    done = put_form("done.person@example.com")
    run(done)
    result = cli("inbox", "list", "--status", "dead")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip().startswith("│")]
    assert any(f"│ {dead} " in line and "InvalidRequest: happyfox HTTP 400" in line for line in lines)
    assert not any(f"│ {done} " in line for line in lines)
    assert "1 row(s) with status dead" in result.stdout
    assert "example.com" not in result.stdout + result.stderr
    every = cli("inbox", "list")
    assert f"│ {done} " in every.stdout and f"│ {dead} " in every.stdout


def test_list_shows_why_an_unusable_payload_is_dead(cli, sandbox):
    call = fixture("webhooks/aircall/fixtures/call.ended__missed.json")
    del call["data"]["id"]
    ticket = fixture("webhooks/happyfox/fixtures/ticket.updated__wrapped.json")["ticket"]
    [change] = fixture("webhooks/hubspot/fixtures/ticket.propertyChange__stage.json")
    del change["objectId"]
    bad = {put("aircall", "call.ended", call): "data.id missing",
           put("happyfox", "ticket", {"ticket_id": "#BR00001003", "ticket": ticket}): "ticket_id int_parsing",
           put("hubspot", "ticket.propertyChange", change): "objectId missing"}
    for inbox_id in bad:
        assert run(inbox_id) == "dead" and row(inbox_id).attempts == 1
    result = cli("inbox", "list", "--status", "dead")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip().startswith("│")]
    for inbox_id, problem in bad.items():
        assert any(f"│ {inbox_id} " in line and problem in line and "│ 1 " in line for line in lines), problem
    assert "3 row(s) with status dead" in result.stdout
    assert "example.com" not in result.stdout and "123 4567" not in result.stdout


def test_replay_all_dead_now_completes_the_intake(cli, sandbox):
    fast_vendors()
    first, second = dead_form(sandbox, "a@example.com"), dead_form(sandbox, "b@example.com")
    result = cli("inbox", "replay", "--all-dead", "--now")
    assert result.returncode == 0, result.stderr
    assert "ran 2 row(s)" in result.stdout
    assert row(first).status == row(second).status == "done"
    assert len(sandbox.state("happyfox")["tickets"]) == 2 and len(sandbox.mail()) == 2
    again = cli("inbox", "replay", "--all-dead", "--now")
    assert "ran 0 row(s)" in again.stdout and len(sandbox.state("happyfox")["tickets"]) == 2


def test_replay_one_id_queues_it_for_a_worker(cli, sandbox):
    fast_vendors()
    inbox_id = dead_form(sandbox, "queued@example.com")
    result = cli("inbox", "replay", str(inbox_id))
    assert result.returncode == 0, result.stderr
    assert row(inbox_id).status == "pending" and row(inbox_id).attempts == 0
    queue = make_huey(sqlite_path=str(cli.data_dir / "huey.db"))
    assert queue.pending_count() == 1
    [message] = queue.storage.enqueued_items()
    task = jobs.huey.deserialize_task(message)  # this process's registry knows the job
    assert task.name.endswith("process_inbox") and task.args == (inbox_id,)


def test_replay_refuses_a_done_row_and_needs_an_argument(cli, sandbox):
    fast_vendors()
    inbox_id = put_form()
    run(inbox_id)
    result = cli("inbox", "replay", str(inbox_id), "--now")
    assert result.returncode == 1 and "not replayable" in result.stderr
    assert cli("inbox", "replay").returncode == 2


def test_ticket_create_runs_the_same_intake_once_per_key(cli, sandbox):
    args = ("ticket", "create", "--channel", "post", "--email", "Levél.Író@example.com", "--first-name", "Lajos",
            "--last-name", "Levél", "--subject", "Levélben küldött panasz", "--details", "A számla hibás.",
            "--category", "szamlazas", "--key", "post-2026-11-24-1")
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    [ticket] = tickets()
    assert ticket.channel == "post" and ticket.category == "szamlazas"
    assert f"ticket {ticket.happyfox_display_id}" in result.stdout
    [mail] = sandbox.mail()
    assert ticket.happyfox_display_id in mail["subject"]
    assert len(objects(sandbox, "hubspot", "tickets")) == 1
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert len(tickets()) == 1 and len(sandbox.state("happyfox")["tickets"]) == 1 and len(sandbox.mail()) == 1
    with store.session() as s:
        assert s.query(InboxEvent).filter_by(source="manual").count() == 1


def test_ticket_create_refuses_a_report_nobody_can_be_told_about(cli, sandbox):
    result = cli("ticket", "create", "--channel", "fax", "--subject", "Fax")
    assert result.returncode == 2 and "email or a phone" in result.stderr
    unknown = cli("ticket", "create", "--channel", "fax", "--subject", "Fax", "--phone", "+36301234567",
                  "--category", "nope")
    assert unknown.returncode == 2 and "category" in unknown.stderr
    assert sandbox.state("happyfox")["tickets"] == {}
