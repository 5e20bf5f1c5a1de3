"""Every vendor fixture (webhooks/<source>/fixtures/, the documented shapes) through the whole path, as a vendor
would send it: signed, posted to the real route, stored, its job run against the sandbox; then delivered again,
which stores nothing and runs nothing twice. An event no route names is accepted and ignored (flows/routes.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from flows import routes

from .delivery import deliver, fixture
from .flowkit import fast_vendors, row

ROOT = Path(__file__).resolve().parents[2] / "webhooks"
CASES = sorted((p.parent.parent.name, p.stem) for p in ROOT.glob("*/fixtures/*.json")
               if not p.stem.endswith("_multipart"))  # multipart forms: test_webhook_form.py posts those


def kinds(source: str, body: object) -> list[str]:
    if source == "aircall":
        return [body["event"]]
    if source == "hubspot":
        return [event["subscriptionType"] for event in body]
    return [{"happyfox": "ticket", "form": "form"}[source]]


@pytest.mark.parametrize(("source", "name"), CASES)
def test_each_fixture_runs_once_through_route_and_job(settings, sandbox, source, name):
    fast_vendors()
    body = fixture(source, name)
    first = deliver(source, body)
    routed = [kind for kind in kinds(source, body) if routes.is_routed(source, kind)]
    if not routed:
        assert first.status == 200 and first.answer["ignored"] == len(kinds(source, body)) and first.inbox_ids == []
        return
    assert first.status == 202, first.answer
    assert len(first.inbox_ids) == len(routed)
    for inbox_id, outcome in zip(first.inbox_ids, first.outcomes):
        assert outcome == "done", row(inbox_id).last_error

    again = deliver(source, body, msg_id=None if source != "form" else first_msg_id(first))
    assert again.status == 200 and again.inbox_ids == first.inbox_ids
    assert set(again.outcomes) == {"skipped"}


def first_msg_id(delivered) -> str:
    """A form's delivery is named by its `webhook-id`: the website's retry sends the same one."""
    return row(delivered.inbox_id).event_key
