"""The models and the migration agree, on SQLite and on PostgreSQL; `scripts/regen-schema` reproduces the
committed migration."""
from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from connectors import pacing
from core import settings, store
from core.models import Base

TABLES = {"customers", "identities", "tickets", "inbox", "effects", "erasures", "erasure_steps", "audit"}


def test_models_and_migration_agree(database_url):
    store.upgrade(database_url)
    try:
        with store.engine(database_url).connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, [Base.metadata, pacing.metadata])
            tables = set(inspect(conn).get_table_names())
            current = context.get_current_revision()
    finally:
        store.dispose()
    assert diff == [], f"models and migrations/ disagree; run scripts/regen-schema: {diff}"
    assert TABLES <= tables
    assert current == ScriptDirectory.from_config(store.alembic_config(database_url)).get_current_head()


def test_one_head():
    script = ScriptDirectory.from_config(store.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_regen_schema_reproduces_the_committed_migration():
    result = subprocess.run([str(settings.ROOT / "scripts" / "regen-schema"), "--check"], capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert result.returncode == 0, result.stdout + result.stderr
