"""Nothing personal in any log line, tracebacks included, and nothing in clear where the policy allows only hashes.

Every flow runs with one person's distinctive email, phone and name, at DEBUG, through huey's own execution path
(which logs an unhandled exception with its traceback), and one job fails with the person's data in its
exception. Then all log output is searched: pytest's capture and a real handler set up by `core.logs.configure`.
Every table is searched too: only the columns that docs/privacy.md and core/models.py give personal data may hold
it before the erasure, and none after.
"""
from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, inspect, select

from core import jobs, logs, store
from core.models import Ticket
from flows import dispatch, routes, vendors
from flows.closure import reconcile
from flows.privacy import access, erasure
from sandbox.aircall import simulate_call

from .delivery import deliver
from .flowkit import put_form
from .privacykit import PHONE, WRITTEN_PHONE, leaks_in, quick

EMAIL = "xenia.naplotlan@example.com"
FIRST, LAST = "Xénia", "Zebulonné"
# Where personal data may live until the person is erased (docs/privacy.md, core/models.py): the customer's
# names, the identities (email, phone), the inbound events as they came, and what the customer typed into a
# ticket. Never the audit trail, effects, erasure records, tombstones or cursors (ids and salted hashes only).
MAY_HOLD = {"customers.first_name", "customers.last_name", "identities.value", "inbox.payload"}


def personal(text: str) -> bool:
    lowered = text.lower()
    return leaks_in(text, EMAIL) or FIRST.lower() in lowered or LAST.lower() in lowered


def table_traces() -> set[str]:
    """`table.column` of every value (every table, found by reflection) that holds the email, phone or a name."""
    found = set()
    with store.engine().connect() as conn:
        for name in inspect(conn).get_table_names():
            table = Table(name, MetaData(), autoload_with=conn)
            for row in conn.execute(select(table)).mappings():
                for column, value in row.items():
                    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
                    if personal(text):
                        found.add(f"{name}.{column}")
    return found


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Any:
    """Logging as a deployment sets it up at DEBUG (core.logs.configure, JSON lines), with pytest's capture after
    it on the root logger; both restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure("DEBUG", stream=stream, json=True)
    caplog.handler.setLevel(logging.DEBUG)
    root.addHandler(caplog.handler)
    yield stream, caplog
    root.handlers[:], level = saved
    root.setLevel(level)


def huey_runs(task: Any) -> Any:
    """Run a job as the consumer does (huey logs an unhandled exception with its traceback)."""
    return jobs.huey.execute(task)


def test_every_flow_with_one_persons_data_leaves_none_in_logs_and_none_where_only_hashes_belong(
        settings, sandbox, all_logs, monkeypatch, tmp_path):
    stream, caplog = all_logs
    quick()
    running = sandbox.running.sandbox

    # Form intake, through huey's execution path.
    form_id = put_form(EMAIL, phone=WRITTEN_PHONE, first_name=FIRST, last_name=LAST)
    assert huey_runs(dispatch.process_inbox.s(form_id)) == "done"
    # A call from the person's number.
    call = simulate_call(running, "inbound", WRITTEN_PHONE, 75, answered=True, recording=True)
    payload = {"resource": "call", "event": "call.ended", "timestamp": call["ended_at"], "data": call}
    assert huey_runs(dispatch.process_inbox.s(deliver("aircall", payload, run=False).inbox_id))
    # Closure in HappyFox, and the survey mail.
    with store.session() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.channel == "form")).one()
        happyfox_id = ticket.happyfox_id
    closed = vendors.get().happyfox.update_ticket(happyfox_id, staff_id=1, status=7).raw
    assert deliver("happyfox", closed).outcome == "done"
    assert any(EMAIL in m["to"] for m in sandbox.mail() if "elégedett" in m["subject"])
    # A job that fails with the person's data in its exception: huey logs it with the traceback.
    def fails(event: Any) -> None:
        raise ValueError(f"cannot reach {EMAIL} or {PHONE}")

    monkeypatch.setitem(routes.ROUTES, ("form", "form"), (fails,))
    failing = put_form(EMAIL, phone=WRITTEN_PHONE)
    huey_runs(dispatch.process_inbox.s(failing))
    monkeypatch.undo()
    # Access export and reconciliation.
    assert access.export(email=EMAIL, out_dir=tmp_path).complete
    reconcile.reconcile()

    before = table_traces()
    assert before - MAY_HOLD == set(), f"personal data outside its columns: {sorted(before - MAY_HOLD)}"
    assert {"identities.value", "customers.last_name"} <= before  # the scan does find what is there

    # Erasure: afterwards no table holds any of it.
    erasure_id = erasure.request(email=EMAIL, phone=PHONE)
    assert erasure.run(erasure_id) == "done"
    assert table_traces() == set()

    written = stream.getvalue()
    captured = caplog.text + "".join(f"{r.getMessage()}\n{r.exc_text or ''}\n{r.stack_info or ''}"
                                     for r in caplog.records)
    assert "Unhandled exception in task" in written and "Traceback" in written  # the failure was logged...
    assert "ValueError: cannot reach x***@***" in written                      # ...masked
    for output in (written, captured):
        leaked = [line for line in output.splitlines() if personal(line)]
        assert leaked == [], "\n".join(leaked[:10])
