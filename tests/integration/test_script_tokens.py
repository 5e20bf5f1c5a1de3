"""Scripts authenticate with bearer tokens named per script (ADMIN_TOKENS=name:token,...; ADMIN_TOKEN is "admin"),
so that the audit says which script did what; `switchboard audit list` shows it."""
from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import select

from core import settings as settings_module
from core import store
from switchboard.cli import main
from core.models import Audit


def named(settings: Any, **env: Any) -> None:
    settings_module.use(settings.model_copy(update={"env": settings.env.model_copy(update=env)}))


def actors() -> list[str]:
    with store.session() as s:
        return list(s.scalars(select(Audit.actor).where(Audit.action == "complaints.viewed").order_by(Audit.id)))


def test_each_named_token_is_audited_under_its_name(client: Any, settings: Any) -> None:
    named(settings, admin_tokens=SecretStr("backup:tok-backup-1, nightly-report:tok-nightly-2"))
    for token in ("tok-backup-1", "tok-nightly-2", settings.env.secret("admin_token")):
        assert client.get("/admin/complaints", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert actors() == ["script:backup", "script:nightly-report", "script:admin"]


def test_an_unknown_or_partial_token_is_refused(client: Any, settings: Any) -> None:
    named(settings, admin_tokens=SecretStr("backup:tok-backup-1"), admin_token=None)
    for header in ("Bearer tok-backup", "Bearer backup:tok-backup-1", "Bearer backup", "Bearer sandbox-admin-token"):
        assert client.get("/admin/complaints", headers={"Authorization": header}).status_code == 401
    assert actors() == []


def test_audit_list_shows_who_did_what(client: Any, settings: Any) -> None:
    named(settings, admin_tokens=SecretStr("backup:tok-backup-1"))
    client.get("/admin/complaints", headers={"Authorization": "Bearer tok-backup-1"})
    with store.session() as s:
        s.add(Audit(actor="anna.ops@example.com", action="inbox.replayed", detail={"inbox_id": 7}))
    env = {"DATABASE_URL": settings.env.database_url, "SWITCHBOARD_CONFIG": str(settings.env.switchboard_config)}
    result = CliRunner().invoke(main, ["audit", "list"], env=env)
    assert result.exit_code == 0, result.output
    assert "script:backup" in result.output and "complaints.viewed" in result.output
    assert "anna.ops@example.com" in result.output and '"inbox_id": 7' in result.output
    only = CliRunner().invoke(main, ["audit", "list", "--actor", "script:backup"], env=env)
    assert "script:backup" in only.output and "inbox.replayed" not in only.output
    assert "1 entry" in only.output
