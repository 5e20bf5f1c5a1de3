"""The staff console (docs/staff.md) through Flask's test client, signing in at the sandbox's fake Google over real
HTTP: the redirect with PKCE, state and nonce; domain and role checks; session cookie flags and expiry; CSRF; each
role allowed and refused; replay, export and erase through the CLI's own flows; and the audit naming the person."""
from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from core import store
from core.models import Audit, Erasure, InboxEvent
from flows.closure import reconcile
from tests.integration.staffkit import (
    COMPLAINTS,
    NO_ROLE,
    OPS,
    OUTSIDER,
    PRIVACY,
    VIEWER,
    authorize_url,
    csrf,
    pick,
    sign_in,
)


def audits(action: str) -> list[Audit]:
    with store.session() as s:
        rows = list(s.scalars(select(Audit).where(Audit.action == action).order_by(Audit.id)))
        s.expunge_all()
        return rows


def dead_event() -> int:
    with store.session() as s:
        row, _ = store.put_inbox(s, "manual", "staff-test-1", "manual", {"subject": "x", "email": "a@example.net"})
        row.status, row.attempts, row.last_error = "dead", 9, "VendorError: HappyFox 400"
        s.flush()
        return row.id


def customer_with_email(email: str = "kund.anna@example.net") -> int:
    from flows import identity
    with store.session() as s:
        customer = identity.resolve(s, identity.Person(email=email, first_name="Anna", last_name="Kund"), "test")
        s.flush()
        return customer.id


def test_signed_out_page_redirects_to_the_provider_with_pkce_state_and_nonce(client: Any, sandbox: Any) -> None:
    url = authorize_url(client, "/staff/inbox?status=dead")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}" == sandbox.base_url and parts.path == "/o/oauth2/v2/auth"
    assert query["response_type"] == "code" and "openid" in query["scope"].split()
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) >= 43
    assert query["state"] and query["nonce"] and query["redirect_uri"] == "http://localhost/staff/auth"
    # After the round trip the person lands on the page they asked for.
    back = urlsplit(pick(url, OPS))
    landed = client.get(f"{back.path}?{back.query}")
    assert landed.status_code == 302 and landed.headers["Location"] == "/staff/inbox?status=dead"


def test_a_staff_member_signs_in_and_the_audit_names_them(client: Any) -> None:
    assert sign_in(client, OPS).status_code == 302
    page = client.get("/staff/?lang=en")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert OPS in text and "Dead letters" in text and "ops, viewer" in text  # by group: support-ops@ and staff@
    assert [a.actor for a in audits("staff.signed_in")] == [OPS]
    assert audits("staff.signed_in")[0].detail == {"roles": ["ops", "viewer"]}


def test_the_session_cookie_is_httponly_samesite_and_secure_outside_loopback(settings: Any) -> None:
    from webhooks.app import create_app
    loopback = create_app(settings).test_client().get("/staff/")
    cookie = loopback.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    public = settings.model_copy(update={"env": settings.env.model_copy(
        update={"public_base_url": "https://support.example.com"})})
    cookie = create_app(public).test_client().get("/staff/").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("email, reason, actor", [(OUTSIDER, "domain", "outsider"), (NO_ROLE, "role", NO_ROLE)])
def test_an_outsider_or_a_staff_member_without_a_role_is_refused(client: Any, email: str, reason: str,
                                                                  actor: str) -> None:
    answer = sign_in(client, email)
    assert answer.status_code == 403 and f'data-reason="{reason}"' in answer.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302  # still signed out: back to the provider
    refused = audits("staff.sign_in_refused")
    assert [(a.actor, a.detail["reason"]) for a in refused] == [(actor, reason)]
    assert not audits("staff.signed_in")


def test_a_forged_callback_is_refused(client: Any) -> None:
    url = authorize_url(client)
    back = urlsplit(pick(url, OPS))
    code = parse_qs(back.query)["code"][0]
    answer = client.get(f"/staff/auth?code={code}&state=not-the-state")
    assert answer.status_code == 400 and "mismatching_state" in answer.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_cancel_at_the_provider_signs_nobody_in(client: Any) -> None:
    back = urlsplit(pick(authorize_url(client), ""))
    assert "error=access_denied" in back.query
    assert client.get(f"{back.path}?{back.query}").status_code == 403
    assert client.get("/staff/").status_code == 302


def test_a_session_older_than_max_hours_signs_in_again(client: Any, settings: Any) -> None:
    sign_in(client, VIEWER)
    assert client.get("/staff/").status_code == 200
    with client.session_transaction() as session:
        session["staff"] = {**session["staff"], "since": time.time() - settings.config.staff.max_hours * 3600 - 5}
    assert client.get("/staff/").status_code == 302


def test_every_post_needs_the_sessions_csrf_token(client: Any) -> None:
    sign_in(client, OPS)
    inbox_id = dead_event()
    assert client.post(f"/staff/inbox/{inbox_id}/replay").status_code == 400
    assert client.post(f"/staff/inbox/{inbox_id}/replay", data={"csrf": "forged"}).status_code == 400
    assert client.post("/staff/sign-out").status_code == 400
    with store.session() as s:
        assert s.get(InboxEvent, inbox_id).status == "dead"


def test_ops_replays_a_dead_event_as_the_cli_does(client: Any) -> None:
    sign_in(client, OPS)
    inbox_id = dead_event()
    detail = client.get(f"/staff/inbox/{inbox_id}?lang=en").get_data(as_text=True)
    assert "VendorError: HappyFox 400" in detail and "a@example.net" not in detail  # payload-free
    answer = client.post(f"/staff/inbox/{inbox_id}/replay", data={"csrf": csrf(client)})
    assert answer.status_code == 302
    with store.session() as s:
        row = s.get(InboxEvent, inbox_id)
        assert (row.status, row.attempts) in (("pending", 0), ("running", 1), ("done", 1), ("failed", 1))
    assert [(a.actor, a.detail) for a in audits("inbox.replayed")] == [(OPS, {"inbox_id": inbox_id,
                                                                              "queued": True})]
    listed = client.get("/staff/inbox?status=dead").get_data(as_text=True)
    assert f"/staff/inbox/{inbox_id}\"" not in listed


@pytest.mark.parametrize("email", [VIEWER, COMPLAINTS, PRIVACY])
def test_only_ops_may_replay(client: Any, email: str) -> None:
    sign_in(client, email)
    inbox_id = dead_event()
    assert 'id="replay"' not in client.get(f"/staff/inbox/{inbox_id}").get_data(as_text=True)
    assert client.post(f"/staff/inbox/{inbox_id}/replay", data={"csrf": csrf(client)}).status_code == 403
    with store.session() as s:
        assert s.get(InboxEvent, inbox_id).status == "dead"
    assert [(a.actor, a.detail["permission"]) for a in audits("staff.refused")] == [(email, "replay")]


@pytest.mark.parametrize("email", [VIEWER, COMPLAINTS])
def test_customers_are_for_ops_and_privacy_only(client: Any, email: str) -> None:
    sign_in(client, email)
    customer_id = customer_with_email()
    assert client.get("/staff/customers").status_code == 403
    assert client.get(f"/staff/customers/{customer_id}").status_code == 403
    assert client.get(f"/staff/customers/{customer_id}/erase").status_code == 403
    assert client.post(f"/staff/customers/{customer_id}/erase", data={"csrf": csrf(client), "confirm": "yes"}
                       ).status_code == 403
    assert client.post(f"/staff/customers/{customer_id}/export", data={"csrf": csrf(client)}).status_code == 403
    assert not audits("customer.viewed") and not audits("erasure.requested")


def test_ops_sees_a_customer_but_may_not_erase_or_export(client: Any) -> None:
    sign_in(client, OPS)
    customer_id = customer_with_email()
    page = client.get(f"/staff/customers/{customer_id}").get_data(as_text=True)
    assert "kund.anna@example.net" in page and 'id="erase"' not in page and 'id="export"' not in page
    assert client.post(f"/staff/customers/{customer_id}/erase", data={"csrf": csrf(client), "confirm": "yes"}
                       ).status_code == 403
    viewed = audits("customer.viewed")
    assert [(a.actor, a.customer_id) for a in viewed] == [(OPS, customer_id)]
    assert "kund" not in json.dumps(viewed[0].detail or {})  # never the data itself


def test_privacy_erases_after_the_confirmation_page(client: Any) -> None:
    sign_in(client, PRIVACY)
    customer_id = customer_with_email()
    confirm = client.get(f"/staff/customers/{customer_id}/erase?lang=en").get_data(as_text=True)
    assert "cannot be undone" in confirm and 'name="confirm"' in confirm
    unconfirmed = client.post(f"/staff/customers/{customer_id}/erase", data={"csrf": csrf(client)})
    assert unconfirmed.status_code == 302 and "missing=1" in unconfirmed.headers["Location"]
    with store.session() as s:
        assert s.scalar(select(Erasure).where(Erasure.customer_id == customer_id)) is None
    done = client.post(f"/staff/customers/{customer_id}/erase", data={"csrf": csrf(client), "confirm": "yes"})
    with store.session() as s:
        erasure = s.scalar(select(Erasure).where(Erasure.customer_id == customer_id))
        assert erasure is not None and erasure.reason == "request"
        erasure_id = erasure.id
    assert done.headers["Location"] == f"/staff/erasures/{erasure_id}"
    receipt = client.get(f"/staff/erasures/{erasure_id}").get_data(as_text=True)
    assert "hubspot" in receipt and "happyfox" in receipt
    requested = audits("erasure.requested")
    assert [(a.actor, a.customer_id) for a in requested] == [(PRIVACY, customer_id)]
    assert "kund.anna" not in json.dumps(requested[0].detail)


def test_privacy_exports_what_is_held_and_the_audit_says_who(client: Any) -> None:
    sign_in(client, PRIVACY)
    customer_id = customer_with_email()
    answer = client.post(f"/staff/customers/{customer_id}/export", data={"csrf": csrf(client)})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert "attachment" in answer.headers["Content-Disposition"]
    data = json.loads(answer.get_data())
    assert data["subject"]["emails"] == ["kund.anna@example.net"] and customer_id in data["customer_ids"]
    exported = audits("access.exported")
    assert [(a.actor, a.customer_id) for a in exported] == [(PRIVACY, customer_id)]


def test_customer_search_is_audited_with_a_hash_of_what_was_searched(client: Any) -> None:
    sign_in(client, PRIVACY)
    customer_id = customer_with_email()
    page = client.get("/staff/customers?q=Kund.Anna@example.net").get_data(as_text=True)
    assert f"/staff/customers/{customer_id}\"" in page
    searched = audits("customers.searched")
    assert searched[0].actor == PRIVACY and searched[0].detail["found"] == 1
    assert "kund" not in json.dumps(searched[0].detail).lower()


def test_sign_out_ends_the_session(client: Any) -> None:
    sign_in(client, VIEWER)
    answer = client.post("/staff/sign-out", data={"csrf": csrf(client)})
    assert answer.status_code == 302 and answer.headers["Location"] == "/staff/signed-out"
    assert client.get("/staff/signed-out").status_code == 200
    assert client.get("/staff/").status_code == 302
    assert [a.actor for a in audits("staff.signed_out")] == [VIEWER]


def test_every_page_renders_in_both_languages(client: Any) -> None:
    sign_in(client, PRIVACY)
    customer_id = customer_with_email()
    inbox_id = dead_event()
    pages = ["/staff/", "/staff/inbox", f"/staff/inbox/{inbox_id}", "/staff/tickets", "/staff/customers",
             f"/staff/customers/{customer_id}", f"/staff/customers/{customer_id}/erase", "/staff/erasures",
             "/staff/audit", "/staff/config"]
    for lang, word in (("hu", "Kijelentkezés"), ("en", "Sign out")):
        client.get(f"/staff/?lang={lang}")
        for path in pages:
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert word in answer.get_data(as_text=True), (lang, path)
    assert "A YAML fájl érvényes" in client.get("/staff/config?lang=hu").get_data(as_text=True)


def test_the_audit_page_is_for_ops_and_privacy(client: Any) -> None:
    sign_in(client, VIEWER)
    assert client.get("/staff/audit").status_code == 403
    assert client.get("/staff/erasures").status_code == 403
    assert client.get("/staff/tickets").status_code == 200


def test_a_customer_under_legal_hold_is_not_erased_from_the_console(client: Any) -> None:
    from core.models import Customer
    sign_in(client, PRIVACY)
    customer_id = customer_with_email()
    with store.session() as s:
        s.get(Customer, customer_id).legal_hold = True
    answer = client.post(f"/staff/customers/{customer_id}/erase", data={"csrf": csrf(client), "confirm": "yes"})
    assert answer.headers["Location"] == f"/staff/customers/{customer_id}"
    assert "legal hold" in client.get(f"/staff/customers/{customer_id}?lang=en").get_data(as_text=True)
    with store.session() as s:
        assert s.scalar(select(Erasure).where(Erasure.customer_id == customer_id)) is None


def test_without_oidc_settings_the_console_says_what_is_missing(settings: Any) -> None:
    from webhooks.app import create_app
    bare = settings.model_copy(update={"env": settings.env.model_copy(
        update={"oidc_issuer": None, "oidc_client_id": None, "oidc_client_secret": None})})
    answer = create_app(bare).test_client().get("/staff/")
    assert answer.status_code == 503 and "OIDC_ISSUER" in answer.get_data(as_text=True)


def test_the_overview_counts_open_tickets_past_their_deadline_and_reconciliations_last_run(client: Any) -> None:
    from datetime import datetime, timedelta, timezone

    from core.models import Cursor, Ticket
    past = datetime.now(timezone.utc) - timedelta(days=3)
    with store.session() as s:
        s.add_all([Ticket(source_key="t:late", channel="email", happyfox_display_id="#LATE1", confirm_due_at=past),
                   Ticket(source_key="t:closed", channel="email", happyfox_display_id="#CLOSED1",
                          confirm_due_at=past, is_closed=True),
                   Ticket(source_key="t:ok", channel="email", happyfox_display_id="#OK1", confirm_due_at=past,
                          confirmed_at=past - timedelta(hours=1)),
                   Cursor(name=reconcile.CURSOR, value='{"phase": "done", "since": "2026-01-01T00:00:00+00:00"}')])
    dead_event()
    sign_in(client, VIEWER)
    page = client.get("/staff/?lang=en").get_data(as_text=True)
    sla = page[page.index('id="sla"'):]
    assert "deadline: 1</h2>" in sla and "#LATE1" in sla and "#CLOSED1" not in sla and "#OK1" not in sla
    reconcile_card = page[page.index('id="reconcile"'):page.index('id="erasures"')]
    assert "done" in reconcile_card and "never" in reconcile_card  # ran, repaired nothing yet
    assert '<div class="big">1</div>' in page[page.index('id="dead-letters"'):]
