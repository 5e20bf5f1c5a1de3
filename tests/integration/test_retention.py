"""The retention schedule (policy 002): due dates from last activity or contract end (read from HubSpot), consent
withdrawal from the CLI, the admin API or a HubSpot property, legal hold, the daily sweep and its preview."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from core import jobs, store
from core.models import Customer, Erasure, Identity, Tombstone
from flows import vendors
from flows.privacy import retention, tombstones

from .delivery import deliver
from .flowkit import run
from .privacykit import quick

NOW = datetime.now(timezone.utc)


@pytest.fixture
def flow(settings, sandbox):
    quick()
    return sandbox


def customer(email: str, last_activity: datetime, contract_end: date | None = None, hubspot: str | None = None,
             legal_hold: bool = False) -> int:
    with store.session() as s:
        row = Customer(last_activity_at=last_activity, contract_end=contract_end, legal_hold=legal_hold)
        s.add(row)
        s.flush()
        s.add(Identity(customer_id=row.id, system="email", value=email))
        if hubspot:
            s.add(Identity(customer_id=row.id, system="hubspot", value=hubspot))
        return row.id


def get(customer_id: int) -> Customer:
    with store.session() as s:
        found = s.get(Customer, customer_id)
        s.expunge_all()
    assert found is not None
    return found


def erasures() -> dict[int, str]:
    with store.session() as s:
        return {e.customer_id: e.reason for e in s.scalars(select(Erasure))}


def test_due_dates_follow_last_activity_contract_end_and_consent(flow):
    old = customer("old@example.com", NOW - relativedelta(years=5, days=1))
    young = customer("young@example.com", NOW - relativedelta(years=4))
    contracted = customer("contract@example.com", NOW - relativedelta(years=6),
                          contract_end=(NOW - relativedelta(years=1)).date())
    soon = customer("soon@example.com", NOW - relativedelta(years=5) + timedelta(days=10))
    due_now = {d.customer_id: d.reason for d in retention.due_within(0)}
    assert due_now == {old: "retention"}
    assert retention.due_date(get(contracted))[0] == (NOW - relativedelta(years=1)).date() + relativedelta(years=5)
    assert {d.customer_id for d in retention.due_within(30)} == {old, soon}
    assert young not in {d.customer_id for d in retention.due_within(300)}

    assert retention.withdraw_consent(email="young@example.com") == young
    assert {d.customer_id: d.reason for d in retention.due_within(0)} == {old: "retention", young: "consent_withdrawn"}


def test_the_sweep_opens_erasures_except_under_legal_hold_and_renewed_contracts(flow):
    hubspot = vendors.get().hubspot
    renewed_id = hubspot.create_contact({"email": "renewed@example.com",
                                         "contract_end_date": (NOW + relativedelta(years=1)).date().isoformat()}).id
    old = customer("old@example.com", NOW - relativedelta(years=6))
    held = customer("held@example.com", NOW - relativedelta(years=6), legal_hold=True)
    renewed = customer("renewed@example.com", NOW - relativedelta(years=6), hubspot=str(renewed_id))
    opened = retention.sweep()
    assert erasures() == {old: "retention"} and len(opened) == 1
    assert get(renewed).contract_end == (NOW + relativedelta(years=1)).date()  # read from HubSpot
    assert held in {d.customer_id for d in retention.due_within(0)}  # due, but held
    assert retention.sweep() == []  # the open request is not opened twice

    assert retention.set_legal_hold(False, email="held@example.com") == held
    retention.sweep()
    assert set(erasures()) == {old, held}


def test_the_sweep_skips_a_customer_whose_contract_cannot_be_read(flow):
    gone = customer("x@example.com", NOW - relativedelta(years=6), hubspot="999999")  # 404: no contract there
    flow.fault(service="hubspot", method="GET", path="/crm/v3/objects/contacts/*", status=503, times=10)
    assert retention.sweep() == []  # HubSpot unreachable: nobody is erased on a guess
    flow.http.delete("/_sandbox/faults").raise_for_status()
    assert len(retention.sweep()) == 1 and set(erasures()) == {gone}


def test_the_sweep_is_a_daily_periodic_job(flow):
    fired = jobs.tick(datetime(2026, 11, 25, 1, 30, tzinfo=timezone.utc))
    assert "flows.privacy.retention.retention_sweep" in fired
    assert "flows.privacy.retention.retention_sweep" not in jobs.tick(datetime(2026, 11, 25, 2, 30, tzinfo=timezone.utc))


def test_consent_withdrawal_through_the_admin_api(flow, settings):
    from webhooks.app import create_app
    target = customer("kata@example.com", NOW)
    client = create_app(settings).test_client()
    url = "/admin/customers/consent-withdrawal"
    token = {"Authorization": f"Bearer {settings.env.secret('admin_token')}"}
    assert client.post(url, json={"email": "kata@example.com"}).status_code == 401
    forged = client.post(url, json={"email": "kata@example.com"}, headers={"Authorization": "Bearer no"})
    assert forged.status_code == 401
    assert client.post(url, json={"name": "Kata"}, headers=token).status_code == 400
    assert client.post(url, data="not json", headers=token).status_code == 400
    answer = client.post(url, json={"email": "Kata@Example.com"}, headers=token)
    assert answer.status_code == 202
    assert run(int(answer.get_json()["id"])) == "done"
    assert get(target).consent_withdrawn_at is not None
    assert [d.customer_id for d in retention.due_within(0)] == [target]


def test_consent_and_contract_end_from_hubspot_property_changes(flow):
    target = customer("kata@example.com", NOW, hubspot="512")
    event = {"objectId": 512, "propertyName": "contract_end_date", "propertyValue": "1735689600000",
             "subscriptionType": "contact.propertyChange", "occurredAt": 1735689600000, "subscriptionId": 3}

    def change(number: int, event: dict) -> str:
        return deliver("hubspot", [{**event, "eventId": number}]).outcome

    assert change(1, event) == "done"
    assert get(target).contract_end == date(2025, 1, 1)
    other = {**event, "propertyName": "firstname", "propertyValue": "Kata"}
    assert change(2, other) == "done"
    assert get(target).consent_withdrawn_at is None
    withdrawn = {**event, "propertyName": "consent_withdrawn", "propertyValue": "true"}
    assert change(3, withdrawn) == "done"
    assert get(target).consent_withdrawn_at is not None
    unknown = {**withdrawn, "objectId": 777}
    assert change(4, unknown) == "done"  # nobody of ours: nothing happens


def test_cli_preview_withdraw_and_sweep(flow, settings):
    from core import settings as settings_module
    from switchboard.cli import main
    customer("old@example.com", NOW - relativedelta(years=6))
    soon = customer("soon@example.com", NOW - relativedelta(years=5) + timedelta(days=5))
    runner = CliRunner(env={"DATABASE_URL": settings.env.database_url,
                            "SECRET_KEY": settings.env.secret("secret_key")})
    try:
        preview = runner.invoke(main, ["retention", "preview", "--days", "7"])
        assert preview.exit_code == 0 and "2 customer(s) due within 7 day(s)" in preview.output
        assert "old@example.com" not in preview.output
        assert runner.invoke(main, ["retention", "preview", "--days", "0"]).output.count("retention") == 1
        withdraw = runner.invoke(main, ["retention", "withdraw", "--email", "nobody@example.com"])
        assert withdraw.exit_code == 1
        hold = runner.invoke(main, ["retention", "hold", "--email", "soon@example.com"])
        assert hold.exit_code == 0 and f"customer {soon}" in hold.output
    finally:
        settings_module.use(settings)
    assert get(soon).legal_hold


def test_a_second_erasure_of_the_same_address_blocks_data_from_between_the_two(flow):
    """The person came back after a first erasure (allowed) and was erased again: a late copy of what they sent in
    between predates the second erasure and must stay out, though the address's tombstone already existed."""
    email, between = "twice@example.com", NOW - timedelta(days=10)
    with store.session() as s:
        assert tombstones.add_tombstones(s, None, email=email) == 1
    with store.session() as s:  # the first erasure, a month ago
        s.get(Tombstone, next(iter(tombstones.tombstone_keys(email=email)))).created_at = NOW - timedelta(days=30)
    assert not tombstones.is_tombstoned(email=email, occurred_at=between)  # a genuinely new contact
    with store.session() as s:  # the second erasure, now
        tombstones.add_tombstones(s, None, email=email)
    assert tombstones.is_tombstoned(email=email, occurred_at=between)
    assert not tombstones.is_tombstoned(email=email, occurred_at=datetime.now(timezone.utc) + timedelta(seconds=1))
