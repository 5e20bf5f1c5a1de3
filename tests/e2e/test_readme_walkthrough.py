"""The README followed literally: `switchboard run` (what `make run` runs) in one process, and every command of the
ops table as a separate process from "a second shell": the same directory and environment, no flag and no
variable the README does not show. Each command finds the running sandbox on its own (core/embedded.py) and its
result is checked on the sandbox. With nothing running, a command that needs the vendors says so in one line."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from core.settings import SANDBOX_DEFAULTS
from tests.conftest import SWITCHBOARD
from tests.e2e.conftest import Running
from tests.e2e.test_make_run import SUBMISSION

EMAIL = SUBMISSION["fields"]["email"]


def ops(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One ops command from a second shell: the environment `running` gave `switchboard run`, minus nothing."""
    environment = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
                   "DATABASE_URL": f"sqlite:///{tmp_path}/data/switchboard.db", "COLUMNS": "200"}
    return subprocess.run(SWITCHBOARD + list(args), capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=environment)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output, output
    return output


def form_ticket(running: Running) -> dict[str, Any]:
    emitted = running.sandbox.post("/_sandbox/emit", json={"service": "form", "data": SUBMISSION})
    assert emitted.json()["status"] == 202, emitted.text
    return running.until("the form's HappyFox ticket", lambda: next(iter(running.state("happyfox")["tickets"]
                                                                            .values()), None))


def test_every_ops_command_works_beside_make_run(running, tmp_path):
    record = json.loads((tmp_path / "data" / "embedded.json").read_text())
    assert record["sandbox_url"] == str(running.sandbox.base_url).rstrip("/")
    assert "token" not in json.dumps(record).lower()  # where the sandbox is, never a credential

    assert "the sandbox of the running `switchboard run`" in ok(ops(tmp_path, "config", "check"))
    ticket = form_ticket(running)
    running.until("the confirmation", lambda: [m for m in running.mail() if ticket["display_id"] in m["text"]])
    assert re.search(r"\bform\b.*\bdone\b", ok(ops(tmp_path, "inbox", "list")))

    # A report staff received by post: the same intake, so a HappyFox ticket in the running sandbox.
    created = ok(ops(tmp_path, "ticket", "create", "--channel", "post", "--email", "posta.pal@example.com",
                     "--first-name", "Pál", "--last-name", "Posta", "--subject", "Levélben érkezett"))
    display_id = re.search(r"#\w+", created).group(0)
    assert any(t["display_id"] == display_id for t in running.state("happyfox")["tickets"].values())

    assert "nothing to fix" in ok(ops(tmp_path, "sync"))
    assert "0 breach(es)" in ok(ops(tmp_path, "sla", "report"))
    assert "deadline(s)" in ok(ops(tmp_path, "complaints", "due"))
    assert "customer(s) due" in ok(ops(tmp_path, "retention", "preview", "--days", "30"))
    assert "opened 0 erasure request(s)" in ok(ops(tmp_path, "retention", "sweep"))

    exported = ok(ops(tmp_path, "export", "--email", EMAIL, "--out", str(tmp_path / "export")))
    assert "incomplete" not in exported
    access = json.loads(next((tmp_path / "export").glob("*.json")).read_text())
    assert EMAIL in json.dumps(access, ensure_ascii=False)

    erased = ok(ops(tmp_path, "erase", "--email", EMAIL))
    assert "done" in erased and "failed" not in erased
    assert not [c for c in running.state("hubspot")["contacts"].values()
                if c["properties"].get("email") == EMAIL]
    assert ticket["id"] not in [t["id"] for t in running.state("happyfox")["tickets"].values()]
    assert "done" in ok(ops(tmp_path, "erasure", "list"))
    assert "done" in ok(ops(tmp_path, "erasure", "status", "1"))


def test_survey_links_follow_the_port_of_the_run(running, tmp_path):
    ticket = form_ticket(running)
    closed = next(s["id"] for s in running.state("happyfox")["statuses"] if s["name"] == "Closed")
    running.sandbox.post(f"/api/1.1/json/ticket/{ticket['id']}/staff_update/", json={"staff": 1, "status": closed},
                         auth=(SANDBOX_DEFAULTS["happyfox_api_key"], SANDBOX_DEFAULTS["happyfox_auth_code"]))
    survey = running.until("the survey mail", lambda: [m for m in running.mail() if "/survey/" in m["text"]])
    assert f"{running.base}/survey/" in survey[0]["text"]


def test_with_nothing_running_a_vendor_command_says_so_in_one_line(tmp_path):
    assert ok(ops(tmp_path, "db", "upgrade"))
    for command in (["erase", "--email", EMAIL], ["export", "--email", EMAIL], ["sync"], ["retention", "sweep"],
                    ["ticket", "create", "--channel", "post", "--email", EMAIL, "--subject", "x"]):
        result = ops(tmp_path, *command)
        assert result.returncode == 2, command
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("no sandbox is running: start `make run`"), (command, lines)
    # Nothing half-done was left behind: no erasure request, no inbox event.
    assert "0 request(s)" in ok(ops(tmp_path, "erasure", "list"))
    assert "0 row(s)" in ok(ops(tmp_path, "inbox", "list"))


def test_a_database_never_created_is_named_not_a_traceback(tmp_path):
    result = ops(tmp_path, "inbox", "list")
    assert result.returncode == 2
    assert "has no tables yet: `make run` creates them, or run `switchboard db upgrade`" in result.stderr
    assert "Traceback" not in result.stderr
