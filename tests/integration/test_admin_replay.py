"""`POST /admin/inbox/<id>/replay`: the bearer-token API's replay, the same as `switchboard inbox replay ID` and the
staff console's button (flows/inbox.py `replay`): a dead event runs again once and makes one ticket; a second
replay makes no second; an unknown id is 404, no token 401."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core import store
from core.models import Audit

from .flowkit import objects, put_form, queue, row, tickets  # noqa: F401 - queue is a fixture


def auth(settings: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.env.secret('admin_token')}"}


def work(queue: Any) -> int:
    """Run every queued job as a worker would; how many ran."""
    ran = 0
    while (task := queue.dequeue()) is not None:
        queue.execute(task)
        ran += 1
    return ran


def dead_event(sandbox: Any, queue: Any) -> int:
    sandbox.fault(service="hubspot", method="POST", path="/crm/v3/objects/contacts/batch/upsert", status=400,
                  times=1)
    inbox_id = put_form()
    from flows import dispatch
    assert dispatch.run(inbox_id) == "dead"
    queue.flush()  # the alert's delivery job: not what this test is about
    return inbox_id


def test_replaying_a_dead_event_processes_it_once(client, settings, sandbox, queue):
    inbox_id = dead_event(sandbox, queue)
    answer = client.post(f"/admin/inbox/{inbox_id}/replay", headers=auth(settings))
    assert answer.status_code == 202 and answer.get_json() == {"id": inbox_id, "status": "pending", "queued": True}
    assert row(inbox_id).status == "pending" and row(inbox_id).attempts == 0
    assert work(queue) == 1
    assert row(inbox_id).status == "done"
    assert len(tickets()) == 1 and len(objects(sandbox, "happyfox", "tickets")) == 1
    with store.session() as s:
        entry = s.scalars(select(Audit).where(Audit.action == "inbox.replayed")).one()
        assert entry.actor == "script:admin" and entry.detail == {"inbox_id": inbox_id, "queued": True}


def test_replaying_twice_makes_no_duplicate(client, settings, sandbox, queue):
    inbox_id = dead_event(sandbox, queue)
    first = client.post(f"/admin/inbox/{inbox_id}/replay", headers=auth(settings))
    second = client.post(f"/admin/inbox/{inbox_id}/replay", headers=auth(settings))  # before a worker ran it
    assert first.status_code == second.status_code == 202
    work(queue)
    assert row(inbox_id).status == "done"
    third = client.post(f"/admin/inbox/{inbox_id}/replay", headers=auth(settings))  # after: done, nothing to do
    assert third.status_code == 409 and third.get_json()["fields"] == {
        "status": "done: only dead, failed or pending events"}
    assert work(queue) == 0
    assert len(tickets()) == 1 and len(objects(sandbox, "happyfox", "tickets")) == 1
    assert len(objects(sandbox, "hubspot", "tickets")) == 1


def test_unknown_id_is_404(client, settings, queue):
    answer = client.post("/admin/inbox/999999/replay", headers=auth(settings))
    assert answer.status_code == 404 and answer.get_json()["fields"] == {"id": "no such inbox event"}
    assert work(queue) == 0


def test_no_token_is_401_and_nothing_changes(client, settings, sandbox, queue):
    inbox_id = dead_event(sandbox, queue)
    assert client.post(f"/admin/inbox/{inbox_id}/replay").status_code == 401
    wrong = client.post(f"/admin/inbox/{inbox_id}/replay", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert row(inbox_id).status == "dead" and work(queue) == 0
