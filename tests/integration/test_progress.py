"""Long ops commands show progress bars on a terminal and nothing of them in a pipe; library INFO chatter stays out.

Each command runs as an operator runs it: the console script in a subprocess, on this test's database, with the
connectors pointed at the sandbox. "On a terminal" is rich's own `TTY_COMPATIBLE=1 TTY_INTERACTIVE=1` (what a pty
gives; one test uses a real pty through `script`); "in a pipe" is the same command with neither set.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from datetime import datetime, timezone

import pytest
from dateutil.relativedelta import relativedelta

from core import jobs, store
from core.models import Customer, Identity
from core.settings import SANDBOX_DEFAULTS
from tests.conftest import SWITCHBOARD

from .flowkit import put_form, run
from .privacykit import EMAIL, present_everywhere, quick

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RICH_TERMINAL = ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR", "NO_COLOR", "COLUMNS")
LIBRARY_NOISE = ("weasyprint", "fontTools", "matplotlib", "huey")


@pytest.fixture
def cli(settings, sandbox, tmp_path):
    """`cli(*args, terminal=...)`: the command's CompletedProcess, on a terminal without its colour codes."""
    quick()
    env = {k: v for k, v in os.environ.items() if k not in RICH_TERMINAL}
    env.update({"DATABASE_URL": settings.env.database_url, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
                "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sandbox.smtp_port), "LOG_LEVEL": "INFO",
                "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "none.json")})
    env.update({name.upper(): value for name, value in SANDBOX_DEFAULTS.items()})
    env.update({f"{vendor}_BASE_URL": sandbox.base_url for vendor in ("HUBSPOT", "HAPPYFOX", "AIRCALL", "GMAIL")})

    def switchboard(*args: str, terminal: bool) -> subprocess.CompletedProcess[str]:
        extra = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "120"} if terminal else {}
        done = subprocess.run(list(SWITCHBOARD) + list(args), capture_output=True, text=True, timeout=120,
                              env={**env, **extra}, cwd=tmp_path)
        if terminal:
            done.stdout, done.stderr = ANSI.sub("", done.stdout), ANSI.sub("", done.stderr)
        return done
    switchboard.env = env  # type: ignore[attr-defined]
    yield switchboard
    jobs.huey.flush()  # what the commands queued (retention sweep, erase) is no later test's work


def bar(text: str, mark: str, name: str, count: str) -> bool:
    """Whether `text` ends with a finished bar: `✓ name ━━━ 1/1` (or `✗ name: not done ... 0/1`)."""
    return re.search(rf"^{mark} {re.escape(name)}\s+━+ {count} ", text, re.MULTILINE) is not None


def plain(stderr: str) -> bool:
    """No bar, no spinner, no control code, and no library's INFO line (the runs are at LOG_LEVEL=INFO): what a
    log drain gets is ours."""
    chatter = [line for line in stderr.splitlines()
               if '"level": "INFO"' in line and any(f'"name": "{name}' in line for name in LIBRARY_NOISE)]
    return "━" not in stderr and "\x1b[" not in stderr and "✓" not in stderr and not chatter


def test_erase_draws_a_bar_per_processor_and_crosses_the_one_not_done(cli, sandbox):
    present_everywhere(sandbox)
    # The Gmail step cannot run in a subprocess (its service account key file is missing): crossed, not ticked.
    shown = cli("erase", "--email", EMAIL, terminal=True)
    assert shown.returncode == 1, shown.stderr
    for processor in ("hubspot", "happyfox", "aircall"):
        assert bar(shown.stderr, "✓", f"erase {processor}", "1/1"), shown.stderr
    assert bar(shown.stderr, "✗", "erase gmail: not done", "0/1")
    assert bar(shown.stderr, "✗", "erase switchboard: not done", "0/1")  # waits for every processor
    assert "gmail step failed: ConfigError" in shown.stderr  # the warning printed above the bars, once
    assert shown.stderr.count("gmail step failed") == 1

    piped = cli("erase", "--email", EMAIL, terminal=False)
    assert piped.returncode == 1 and "│ gmail " in piped.stdout
    assert plain(piped.stderr) and "gmail step failed" in piped.stderr and EMAIL not in piped.stderr


def test_export_draws_a_bar_per_part_and_the_files(cli, sandbox):
    present_everywhere(sandbox)
    shown = cli("export", "--email", EMAIL, "--out", "out", terminal=True)
    assert shown.returncode == 1  # Gmail again: named, the rest exported
    for part in ("switchboard", "hubspot", "happyfox", "aircall"):
        assert bar(shown.stderr, "✓", f"read {part}", "1/1"), shown.stderr
    assert bar(shown.stderr, "✗", "read gmail: not done", "0/1")
    assert bar(shown.stderr, "✓", "write JSON and HTML", "2/2")

    piped = cli("export", "--email", EMAIL, "--out", "out", terminal=False)
    assert "written:" in piped.stdout and "incomplete: gmail" in piped.stderr
    assert plain(piped.stderr)


def test_sync_draws_each_pass_with_its_count(cli, sandbox):
    made = [run(put_form(f"szinkron{n}@example.com")) for n in range(3)]
    assert made == ["done"] * 3
    shown = cli("sync", "--since", "2020-01-01", terminal=True)
    assert shown.returncode == 0, shown.stderr
    assert bar(shown.stderr, "✓", "HappyFox tickets", f"{len(made)}/{len(made)}"), shown.stderr
    assert bar(shown.stderr, "✓", "HubSpot mirrors listed", f"{len(made)}/{len(made)}")
    assert bar(shown.stderr, "✓", "HubSpot mirrors", f"{len(made)}/{len(made)}")

    piped = cli("sync", "--since", "2020-01-01", terminal=False)
    assert piped.returncode == 0 and "checked" in piped.stdout
    assert plain(piped.stderr) and "HappyFox tickets" not in piped.stderr


def test_retention_sweep_counts_the_due_customers(cli, sandbox):
    long_ago = datetime.now(timezone.utc) - relativedelta(years=6)
    with store.session() as s:
        for n in range(3):
            row = Customer(last_activity_at=long_ago)
            s.add(row)
            s.flush()
            s.add(Identity(customer_id=row.id, system="email", value=f"regi{n}@example.com"))
    shown = cli("retention", "sweep", terminal=True)
    assert shown.returncode == 0, shown.stderr
    assert bar(shown.stderr, "✓", "due customers", "3/3"), shown.stderr
    assert "opened 3 erasure request(s)" in shown.stdout

    piped = cli("retention", "sweep", terminal=False)  # nobody is due any more: their requests are open
    assert "opened 0 erasure request(s)" in piped.stdout and plain(piped.stderr)


def test_report_draws_a_bar_per_file_and_keeps_the_libraries_quiet(cli):
    shown = cli("report", "complaints", "--quarter", "2026Q3", "--out", "reports", terminal=True)
    assert shown.returncode == 0, shown.stderr
    for suffix in ("html", "pdf", "csv"):
        assert bar(shown.stderr, "✓", f"complaints-2026Q3.{suffix}", "1/1"), shown.stderr

    piped = cli("report", "complaints", "--quarter", "2026Q3", "--out", "reports", terminal=False)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.split() == [f"reports/complaints-2026Q3.{suffix}" for suffix in ("html", "pdf", "csv")]
    # At LOG_LEVEL=INFO: WeasyPrint's rendering steps and matplotlib's unit guesses used to fill this.
    assert piped.stderr == "", piped.stderr


def test_a_real_terminal_gets_the_bars_without_any_variable(cli, tmp_path):
    """Under `script` the command's stderr is a pty: rich sees a terminal by itself."""
    command = shlex.join(list(SWITCHBOARD) + ["report", "complaints", "--quarter", "2026Q3", "--out", "reports"])
    done = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=120,
                          env={**cli.env, "TERM": "xterm-256color"}, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout
    screen = ANSI.sub("", done.stdout).replace("\r\n", "\n")
    assert bar(screen, "✓", "complaints-2026Q3.pdf", "1/1"), screen
    assert "\x1b[" in done.stdout  # drawn, with colour, in place
    assert not any(f"{name}" in screen for name in LIBRARY_NOISE)
