"""A crash after every outbound write of the form intake: the write reached the vendor, the step that records it
fails, the job fails; the retry must find what was written (effects table, or the key stamped on the remote
object) and finish, leaving exactly one of everything in the sandbox."""
from __future__ import annotations

import pytest

from flows import effects

from ..integration.flowkit import fast_vendors, objects, put_form, row, run, tickets

# The outbound writes of one form intake, in order, and what each produced.
WRITES = ["happyfox ticket", "hubspot contact upsert", "hubspot ticket", "confirmation mail",
          "confirmation's hubspot email record"]


class Crash(RuntimeError):
    """The process dying between a vendor's answer and our record of it."""


@pytest.fixture
def crash_after(monkeypatch):
    """Make the record that follows the k-th outbound write fail, once."""
    def arm(k: int) -> list[str]:
        real, seen = effects._record, []

        def record(key, remote_id, detail):
            seen.append(key)
            if len(seen) == k:
                raise Crash(f"crash after write {k} ({key})")
            return real(key, remote_id, detail)

        monkeypatch.setattr(effects, "_record", record)
        return seen
    return arm


def assert_exactly_one_of_everything(sandbox, email: str) -> None:
    state = sandbox.state()
    assert len(state["happyfox"]["tickets"]) == 1
    [contact] = objects(sandbox, "hubspot", "contacts")
    assert contact["properties"]["email"] == email
    [mirror] = objects(sandbox, "hubspot", "tickets")
    links = [a for a in state["hubspot"]["associations"] if a["typeId"] == 16]
    assert links == [{"from": ["tickets", mirror["id"]], "to": ["contacts", contact["id"]], "typeId": 16}]
    [hf] = state["happyfox"]["tickets"].values()
    mails = [m for m in sandbox.mail() if m["to"] == [email]]
    assert len(mails) == 1 and hf["display_id"] in mails[0]["subject"]
    [email] = objects(sandbox, "hubspot", "emails")  # the confirmation, recorded on contact and ticket once
    assert sorted(a["typeId"] for a in state["hubspot"]["associations"] if a["from"] == ["emails", email["id"]]) \
        == [198, 224]
    [ticket] = tickets()
    assert ticket.happyfox_id == hf["id"] and ticket.hubspot_ticket_id == mirror["id"]
    assert ticket.told_id == hf["display_id"] and ticket.confirmed_at is not None


@pytest.mark.parametrize("k", range(1, len(WRITES) + 1), ids=WRITES)
def test_a_crash_after_each_outbound_write_leaves_no_duplicate(settings, sandbox, crash_after, k):
    fast_vendors()
    seen = crash_after(k)
    inbox_id = put_form("crash@example.com")
    with pytest.raises(Crash):
        run(inbox_id)
    assert len(seen) == k
    assert row(inbox_id).status == "failed" and row(inbox_id).last_error == "Crash"

    assert run(inbox_id) == "done"
    assert row(inbox_id).status == "done" and row(inbox_id).attempts == 2
    assert_exactly_one_of_everything(sandbox, "crash@example.com")

    sandbox.clear_calls()  # and a further delivery of the job changes nothing
    assert run(inbox_id) == "skipped"
    assert sandbox.calls() == []


def test_a_crash_after_every_write_in_turn_still_converges(settings, sandbox, monkeypatch):
    """Each attempt dies after the first write it records (every key once); the job converges in as many
    attempts as there are writes, plus the one that finishes."""
    fast_vendors()
    real = effects._record
    crashed: set[str] = set()

    def record(key, remote_id, detail):
        if key not in crashed:
            crashed.add(key)
            raise Crash(key)
        return real(key, remote_id, detail)

    monkeypatch.setattr(effects, "_record", record)
    inbox_id = put_form("again@example.com")
    outcomes = []
    for _ in range(len(WRITES) + 2):
        try:
            outcomes.append(run(inbox_id))
        except Crash:
            outcomes.append("crash")
        if outcomes[-1] == "done":
            break
    assert outcomes == ["crash"] * len(WRITES) + ["done"]
    assert_exactly_one_of_everything(sandbox, "again@example.com")


@pytest.mark.parametrize("service, path", [("happyfox", "/api/1.1/json/tickets/"),
                                           ("hubspot", "/crm/v3/objects/tickets")])
def test_a_create_that_times_out_but_happened_is_not_made_twice(settings, sandbox, service, path):
    """The vendor makes the object after our timeout (2 s in tests): the create is not retried inline, the job
    fails, and its retry finds the object by its key instead of making a second one."""
    fast_vendors()
    sandbox.fault(service=service, method="POST", path=path, delay=2.3, times=1)
    inbox_id = put_form("slow@example.com")
    with pytest.raises(Exception):
        run(inbox_id)
    assert row(inbox_id).status == "failed" and row(inbox_id).last_error.startswith("Unavailable")
    import time
    time.sleep(0.5)  # the slow create lands
    assert run(inbox_id) == "done"
    assert_exactly_one_of_everything(sandbox, "slow@example.com")
