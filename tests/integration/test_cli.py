"""The `switchboard` command as an operator runs it: the installed console script in a subprocess."""
from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

from core.settings import DEFAULT_CONFIG, ROOT
from tests.conftest import SWITCHBOARD


def switchboard(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = list(SWITCHBOARD)
    environment = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
                   "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db", **env}
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env=environment)


def test_help_lists_the_commands(tmp_path):
    result = switchboard("--help", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("run", "serve", "worker", "clock", "config", "db", "sandbox"):
        assert f"  {command} " in result.stdout
    config_help = switchboard("config", "--help", tmp_path=tmp_path)
    assert "check" in config_help.stdout
    assert "upgrade" in switchboard("db", "--help", tmp_path=tmp_path).stdout
    for command in ("run", "serve"):
        assert "--port" in switchboard(command, "--help", tmp_path=tmp_path).stdout
        assert "--host" in switchboard(command, "--help", tmp_path=tmp_path).stdout


def test_config_check_passes_on_the_default_config(tmp_path):
    result = switchboard("config", "check", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stderr and str(DEFAULT_CONFIG) in result.stderr
    assert "sandbox" in result.stderr


def assert_readable_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "configuration error" in output
    return output


def test_broken_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("default_form: website\nforms:\n  website: {fields: [a, b}\n", encoding="utf-8")
    output = assert_readable_error(switchboard("config", "check", tmp_path=tmp_path, SWITCHBOARD_CONFIG=str(bad)))
    assert str(bad) in output
    assert "line 3" in output and "not valid YAML" in output
    assert "expected ',' or ']'" in output  # what the parser expected there


def test_bad_value_names_the_key_path(tmp_path):
    data = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data["sla"]["confirm_within_working_days"] = -1
    bad = tmp_path / "bad-value.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    output = assert_readable_error(switchboard("config", "check", tmp_path=tmp_path, SWITCHBOARD_CONFIG=str(bad)))
    assert f"{bad}: sla.confirm_within_working_days: Input should be greater than or equal to 1" in output


def test_missing_config_file_is_named(tmp_path):
    output = assert_readable_error(switchboard("config", "check", tmp_path=tmp_path,
                                               SWITCHBOARD_CONFIG=str(tmp_path / "nowhere.yaml")))
    assert "nowhere.yaml: file not found" in output


def test_half_set_credentials_name_the_missing_variables_and_no_secret(tmp_path):
    secrets = {"HUBSPOT_ACCESS_TOKEN": "pat-eu1-9f8e7d6c-secret", "HAPPYFOX_API_KEY": "hf-key-5a4b3c-secret",
               "SECRET_KEY": "flask-signing-secret-000"}
    output = assert_readable_error(switchboard("config", "check", tmp_path=tmp_path, **secrets))
    for name in ("HAPPYFOX_AUTH_CODE", "AIRCALL_API_ID", "AIRCALL_API_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS",
                 "HAPPYFOX_BASE_URL", "ADMIN_TOKEN", "FORM_WEBHOOK_SECRET", "GMAIL_USER"):
        assert name in output
    for value in secrets.values():
        assert value not in output


def test_invalid_secret_format_is_named_without_its_value(tmp_path):
    output = assert_readable_error(switchboard("config", "check", tmp_path=tmp_path,
                                               FORM_WEBHOOK_SECRET="plain-text-secret-42"))
    assert "FORM_WEBHOOK_SECRET" in output and "whsec_" in output
    assert "plain-text-secret-42" not in output


def test_db_upgrade_creates_the_tables_on_a_fresh_sqlite(tmp_path):
    database = tmp_path / "fresh" / "switchboard.db"
    result = switchboard("db", "upgrade", tmp_path=tmp_path, DATABASE_URL=f"sqlite:///{database}")
    assert result.returncode == 0, result.stderr
    assert "database at head" in result.stderr
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"customers", "identities", "tickets", "inbox", "effects", "erasures", "erasure_steps", "audit"} <= tables


def test_db_upgrade_names_an_unreachable_database_without_password_or_traceback(tmp_path):
    result = switchboard("db", "upgrade", tmp_path=tmp_path,
                         DATABASE_URL="postgresql://admin:pw-never-shown@127.0.0.1:1/none")
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "database unreachable" in output and "127.0.0.1:1/none" in output
    assert "pw-never-shown" not in output and "Traceback" not in output


# ---------------------------------------------------------------- the project's own scripts

@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_install_only_creates_the_venv_and_installs():
    result = subprocess.run(["make", "-n", "-B", "install"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.splitlines() if line.strip()]
    assert any("-m venv .venv" in line for line in commands)
    installs = [line for line in commands if "pip install" in line]
    # Exactly the lock: every pin hash-checked, nothing resolved beside it, not even the build backend.
    assert any("--require-hashes" in line and "-r requirements.txt" in line and "--no-deps" in line
               for line in installs), installs
    assert all("--no-deps" in line for line in installs), installs
    assert any("-e ." in line and "--no-build-isolation" in line for line in installs), installs
    for other in ("pytest", "switchboard", "services", "browser"):
        assert not any(other in line for line in commands), commands


def test_ci_runs_make_test():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    commands = [line.strip() for line in ci.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert "make test" in commands


@pytest.mark.parametrize("ci, status", [("true", 1), ("", 0)])
def test_services_script_fails_in_ci_when_postgres_is_unreachable(ci, status):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run([str(ROOT / "scripts" / "services.sh")], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "CI": ci, "PGPORT": str(port), "SERVICES_WAIT": "1"})
    assert result.returncode == status, result.stdout + result.stderr
    assert "PostgreSQL is not reachable" in result.stderr
    assert ("failing instead of skipping" in result.stderr) == (ci == "true")


def test_procfile_declares_the_four_processes_with_existing_commands():
    import click

    from switchboard.cli import main
    processes = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert {name: command.strip() for name, command in processes.items()} == {
        "web": "switchboard serve", "worker": "switchboard worker", "clock": "switchboard clock",
        "release": "switchboard db upgrade"}
    for command in processes.values():
        found: click.Command | None = main
        for word in command.split()[1:]:  # resolve without running: `main` would reconfigure logging
            assert isinstance(found, click.Group), command
            found = found.get_command(click.Context(found), word)
        assert found is not None and not isinstance(found, click.Group), command


def test_pyproject_declares_the_application():
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["name"] == "switchboard"
    assert project["project"]["requires-python"].startswith(">=3.11")
    assert project["project"]["scripts"] == {"switchboard": "switchboard.launch:main"}
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {"connectors*", "flows*", "webhooks*", "core*", "sandbox*"} <= set(packages)
    for requirement in project["project"]["dependencies"]:
        assert ">=" in requirement and "<" in requirement.split(">=", 1)[1], f"no range: {requirement}"
