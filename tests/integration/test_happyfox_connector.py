"""HappyFoxClient against the sandbox's HappyFox fake over real HTTP: every method, and each fault path."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from tenacity import wait_fixed

from connectors import pacing
from connectors.errors import InvalidRequest, NotFound, RateLimited, Unauthorized, Unavailable
from connectors.happyfox import RECENT_PAGES, HappyFoxClient, modified_at, parse_time
from connectors.policy import Policy
from connectors.records import HappyFoxTicket

KEY_FIELD = 1  # the sandbox's "switchboard_key" ticket custom field


def make_client(sandbox: Any, **policy: Any) -> HappyFoxClient:
    options = {"timeout": 0.5, "attempts": 3, "backoff": wait_fixed(0.01), **policy}
    creds = sandbox.credentials
    return HappyFoxClient(sandbox.base_url, creds["happyfox_api_key"], creds["happyfox_auth_code"],
                          Policy("happyfox", **options))


@pytest.fixture
def happyfox(sandbox: Any) -> Any:
    client = make_client(sandbox)
    yield client
    client.close()


def new_ticket(client: HappyFoxClient, key: str = "create-ticket:1", **extra: Any) -> HappyFoxTicket:
    return client.create_ticket("Cannot log in", "The login page says error 500.", 3, "Anna.Kovacs@example.com",
                                name="Kovács Anna", phone="+36301234567", custom_fields={KEY_FIELD: key}, **extra)


def test_create_and_get_ticket(sandbox: Any, happyfox: HappyFoxClient) -> None:
    created = new_ticket(happyfox, priority=3)
    assert created.display_id == f"#BR{created.id:08d}"
    assert created.status_name == "New" and created.raw["priority"]["name"] == "High"
    assert created.user is not None and created.user.email == "anna.kovacs@example.com"
    assert created.user.primary_phone is not None and created.user.primary_phone.number == "+36301234567"
    fetched = happyfox.get_ticket(created.id)
    assert (fetched.custom_fields[0].id, fetched.custom_fields[0].value) == (1, "create-ticket:1")
    assert fetched.updates[0].message is not None and fetched.updates[0].message.text == \
        "The login page says error 500."
    assert modified_at(fetched) == parse_time(fetched.raw["last_modified"])
    assert modified_at(fetched).tzinfo is timezone.utc
    assert fetched.raw["id"] == created.id and fetched.raw["subject"] == "Cannot log in"  # the whole answer kept
    assert str(created.id) in sandbox.state("happyfox")["tickets"]


def test_attachments_reach_the_fake_as_multipart(sandbox: Any, happyfox: HappyFoxClient) -> None:
    files = [{"filename": "screen.png", "content_type": "image/png", "data": b"\x89PNG" + b"0" * 100},
             {"filename": "log.txt", "content_type": "text/plain", "data": b"trace"}]
    created = new_ticket(happyfox, attachments=files)
    stored = happyfox.get_ticket(created.id)
    got = stored.raw["updates"][0]["message"]["attachments"]
    assert [(a["filename"], a["size"]) for a in got] == [("screen.png", 104), ("log.txt", 5)]
    assert stored.raw["attachments_count"] == 2 and stored.category_id == 3
    assert stored.custom_fields[0].value == "create-ticket:1"


def test_validation_error_is_invalid_request(happyfox: HappyFoxClient) -> None:
    with pytest.raises(InvalidRequest) as caught:
        happyfox.create_ticket("Subject", "Text", 99, "a@example.com")
    assert caught.value.status == 400 and "category" in caught.value.message


def test_tickets_pages_and_filters_by_modification(happyfox: HappyFoxClient) -> None:
    ids = [new_ticket(happyfox, key=f"k{i}").id for i in range(5)]
    assert [t.id for t in happyfox.tickets(page_size=2)] == ids
    since = datetime.now(timezone.utc) - timedelta(minutes=5)
    assert sorted(t.id for t in happyfox.tickets(updated_since=since, page_size=2)) == ids
    assert list(happyfox.tickets(updated_since=datetime.now(timezone.utc) + timedelta(days=2))) == []


def test_changes_among_a_busy_days_tickets_cost_pages_by_the_changes(sandbox: Any, happyfox: HappyFoxClient) -> None:
    """HappyFox filters by day only: when 60 tickets were all touched earlier today and 3 since the cursor, the
    newest-first listing reads the page that holds the changes instead of all six (the reconcile cost of #14)."""
    ids = busy_morning(sandbox, happyfox, 60)
    since = datetime.now(timezone.utc)
    changed = [ids[7], ids[33], ids[58]]
    for ticket_id in changed:
        happyfox.update_ticket(ticket_id, 1, private_note="checked")
    sandbox.clear_calls()
    found = [t.id for t in happyfox.tickets(updated_since=since, page_size=10)]
    assert sorted(found) == sorted(changed)
    listings = [c for c in sandbox.calls("happyfox") if c["path"].endswith("/tickets/")]
    assert len(listings) == 1  # the newest-first page holds the 3 changes and older ones: not 6 pages


def busy_morning(sandbox: Any, happyfox: HappyFoxClient, count: int) -> list[int]:
    ids = [new_ticket(happyfox, key=f"busy{i}").id for i in range(count)]
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    tickets = sandbox.running.sandbox.state["happyfox"]["tickets"]
    for n, ticket_id in enumerate(ids):  # touched this morning, one second apart (the fake's stamps, set directly)
        tickets[ticket_id]["last_modified"] = f"{today} 00:00:{n:02d}"
    return ids


def test_many_changes_among_a_busy_days_tickets_are_streamed_from_the_bisected_page(
        sandbox: Any, happyfox: HappyFoxClient) -> None:
    """More changes than the newest-first pages hold: read oldest first from the first page with a change, found
    by bisecting, rather than held in memory."""
    ids = busy_morning(sandbox, happyfox, 60)
    since = datetime.now(timezone.utc)
    changed = ids[20:45]
    for ticket_id in changed:
        happyfox.update_ticket(ticket_id, 1, private_note="checked")
    sandbox.clear_calls()
    found = list(happyfox.tickets(updated_since=since, page_size=5))  # 25 changes: more than RECENT_PAGES x 5
    assert sorted(t.id for t in found) == sorted(changed)
    assert [t.modified_at for t in found] == sorted(t.modified_at for t in found)
    listings = [c["query"] for c in sandbox.calls("happyfox") if c["path"].endswith("/tickets/")]
    assert any("last_modifieda" in q for q in listings)
    assert len(listings) <= RECENT_PAGES + 1 + 4 + 6  # newest-first pages, page 1, probes, the changes' pages


def test_find_ticket_by_idempotency_field(happyfox: HappyFoxClient) -> None:
    new_ticket(happyfox, key="create-ticket:7")
    wanted = new_ticket(happyfox, key="create-ticket:8")
    assert getattr(happyfox.find_ticket(KEY_FIELD, "create-ticket:8"), "id", None) == wanted.id
    assert happyfox.find_ticket(KEY_FIELD, "create-ticket:9") is None
    happyfox.update_ticket(wanted.id, 1, status=7)  # a closed ticket is still found (status=_all)
    assert getattr(happyfox.find_ticket(KEY_FIELD, "create-ticket:8"), "id", None) == wanted.id


def test_update_ticket_reply_note_and_status(happyfox: HappyFoxClient) -> None:
    ticket = new_ticket(happyfox)
    noted = happyfox.update_ticket(ticket.id, 1, private_note="Checked the logs.")
    assert noted.updates[-1].message is not None and noted.updates[-1].message.message_type == "p"
    closed = happyfox.update_ticket(ticket.id, 1, status=7, update="Fixed, please try again.")
    last = closed.updates[-1]
    assert closed.status_name == "Closed" and closed.status_behavior == "completed"
    assert closed.raw["updates"][-1]["status_change"] == {"old": 1, "new": 7, "old_name": "New", "new_name": "Closed"}
    assert last.status_change is not None and last.status_change.new_name == "Closed"
    assert last.public_staff_reply and last.timestamp is not None and last.timestamp.tzinfo is timezone.utc
    both = happyfox.update_ticket(ticket.id, 1, status=5, update="Reopening.", private_note="Customer called.")
    assert both.status_name == "Reopened" and len(both.updates) == 5
    assert [u.message.message_type for u in both.updates[-2:] if u.message] == [None, "p"]
    with pytest.raises(NotFound):
        happyfox.update_ticket(999_999, 1, private_note="nobody")


def test_delete_ticket_then_gone(happyfox: HappyFoxClient) -> None:
    ticket = new_ticket(happyfox)
    assert happyfox.delete_ticket(ticket.id) == "deleted"
    assert happyfox.delete_ticket(ticket.id) == "gone"
    with pytest.raises(NotFound):
        happyfox.get_ticket(ticket.id)


def test_users_create_search_update_anonymise(happyfox: HappyFoxClient) -> None:
    user = happyfox.create_user("Nagy Péter", "peter@example.com", phone="+36 20 555 1234")
    assert happyfox.get_user(user.id).email == "peter@example.com"
    assert [u.id for u in happyfox.search_users("peter@example.com")] == [user.id]
    assert [u.id for u in happyfox.search_users("+36205551234")] == [user.id]
    assert happyfox.search_users("email:nobody@example.com") == []
    updated = happyfox.update_user(user.id, name="Nagy Péter Pál", **{"c-cf-1": "Acme Kft."})
    assert updated.name == "Nagy Péter Pál" and updated.raw["custom_fields"][0]["value"] == "Acme Kft."
    blank = happyfox.anonymise_user(user.id)
    assert (blank.name, blank.email, blank.raw["phones"]) == ("", None, [])
    assert all(field["value"] is None for field in blank.raw["custom_fields"])
    assert happyfox.search_users("peter@example.com") == []
    with pytest.raises(NotFound):
        happyfox.get_user(987_654)


def test_discovery(happyfox: HappyFoxClient) -> None:
    assert {c.id for c in happyfox.categories()} == set(range(1, 10))  # 9: Information request (policy 000)
    assert [s.name for s in happyfox.statuses() if s.raw["behavior"] == "completed"] == ["Solved", "Closed"]
    assert any(p.raw["default"] for p in happyfox.priorities())
    assert happyfox.staff()[0].id == 1
    assert happyfox.ticket_custom_fields()[0].name == "switchboard_key"
    assert {f.id for f in happyfox.user_custom_fields()} == {1, 2}


# ---------------------------------------------------------------- faults

def test_short_429_is_absorbed(sandbox: Any, happyfox: HappyFoxClient) -> None:
    # Retry-After is whole seconds, so the shortest the fake can ask for is 1 s; the policy waits it out inline.
    sandbox.fault(service="happyfox", method="GET", path="/api/1.1/json/statuses/", status=429, times=1,
                  retry_after=1)
    assert happyfox.statuses()
    assert [c["status"] for c in sandbox.calls("happyfox")] == [429, 200]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(sandbox: Any, happyfox: HappyFoxClient, status: int) -> None:
    sandbox.fault(service="happyfox", path="/api/1.1/json/categories/", status=status, times=2)
    assert len(happyfox.categories()) == 9  # with Information request (policy 000)
    assert [c["status"] for c in sandbox.calls("happyfox")] == [status, status, 200]


def test_server_errors_give_up_as_unavailable(sandbox: Any, happyfox: HappyFoxClient) -> None:
    sandbox.fault(service="happyfox", path="/api/1.1/json/categories/", status=503, times=5)
    with pytest.raises(Unavailable):
        happyfox.categories()
    assert len(sandbox.calls("happyfox")) == 3  # the policy's attempts


def test_bad_credentials_raise_at_once(sandbox: Any) -> None:
    client = HappyFoxClient(sandbox.base_url, "wrong-key", "wrong-code", Policy("happyfox", backoff=wait_fixed(0)))
    with pytest.raises(Unauthorized) as caught:
        client.statuses()
    assert caught.value.status == 401
    assert len(sandbox.calls("happyfox")) == 1


def test_timeout_is_retried_then_unavailable(sandbox: Any, happyfox: HappyFoxClient) -> None:
    sandbox.fault(service="happyfox", path="/api/1.1/json/staff/", delay=0.8, times=1)
    assert happyfox.staff()[0].id == 1  # first attempt timed out at 0.5 s, the retry answered
    sandbox.fault(service="happyfox", path="/api/1.1/json/staff/", delay=0.8, times=3)
    with pytest.raises(Unavailable):
        happyfox.staff()
    sandbox.wait_idle()  # the fake finishes the requests the client gave up on
    assert len([c for c in sandbox.calls("happyfox") if c["path"].endswith("/staff/")]) == 5


def test_dropped_connection_is_retried(sandbox: Any, happyfox: HappyFoxClient) -> None:
    sandbox.fault(service="happyfox", method="GET", path="/api/1.1/json/priorities/", drop=True, times=1)
    assert len(happyfox.priorities()) == 4
    assert [c["path"] for c in sandbox.calls("happyfox")].count("/api/1.1/json/priorities/") == 2


TICKETS = "/api/1.1/json/tickets/"


def ticket_posts(sandbox: Any) -> list[dict[str, Any]]:
    return [c for c in sandbox.calls("happyfox") if (c["method"], c["path"]) == ("POST", TICKETS)]


def ticket_posts_when_settled(sandbox: Any) -> list[dict[str, Any]]:
    """A dropped or delayed request is logged when the fake finishes it, which may be after the client gave up."""
    sandbox.wait_idle()
    return ticket_posts(sandbox)


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503}, {"drop": True}], ids=["500", "503", "drop"])
def test_a_create_that_fails_is_not_retried_inline(sandbox: Any, happyfox: HappyFoxClient, fault: dict) -> None:
    # HappyFox has no idempotency key: a retried create could make a second ticket. The job's retry searches.
    sandbox.fault(service="happyfox", method="POST", path=TICKETS, times=1, **fault)
    with pytest.raises(Unavailable):
        new_ticket(happyfox)
    assert len(ticket_posts_when_settled(sandbox)) == 1
    assert sandbox.state("happyfox").get("tickets", {}) == {}
    new_ticket(happyfox, key="create-ticket:2")  # the fault is spent: the next create goes through
    assert len(sandbox.state("happyfox")["tickets"]) == 1


def test_a_create_that_times_out_but_happens_makes_one_ticket(sandbox: Any, happyfox: HappyFoxClient) -> None:
    sandbox.fault(service="happyfox", method="POST", path=TICKETS, delay=0.8, times=1)
    with pytest.raises(Unavailable):
        new_ticket(happyfox)  # timed out at 0.5 s; the fake creates the ticket at 0.8 s anyway
    assert len(ticket_posts_when_settled(sandbox)) == 1
    assert len(sandbox.state("happyfox")["tickets"]) == 1
    assert happyfox.find_ticket(KEY_FIELD, "create-ticket:1") is not None  # what the job's retry finds


def test_a_create_answered_429_is_retried_and_makes_one_ticket(sandbox: Any, happyfox: HappyFoxClient) -> None:
    sandbox.fault(service="happyfox", method="POST", path=TICKETS, status=429, times=1, retry_after=1)
    assert new_ticket(happyfox).id
    assert [c["status"] for c in ticket_posts(sandbox)] == [429, 200]
    assert len(sandbox.state("happyfox")["tickets"]) == 1


def test_a_user_create_that_fails_is_not_retried_inline(sandbox: Any, happyfox: HappyFoxClient) -> None:
    sandbox.fault(service="happyfox", method="POST", path="/api/1.1/json/users/", status=503, times=1)
    with pytest.raises(Unavailable):
        happyfox.create_user("Kiss Béla", "bela@example.com")
    assert [c["path"] for c in sandbox.calls("happyfox")] == ["/api/1.1/json/users/"]
    assert not happyfox.search_users("bela@example.com")


def test_lockout_surfaces_without_sleeping(sandbox: Any, happyfox: HappyFoxClient) -> None:
    sandbox.limits(happyfox={"requests": 2, "per_seconds": 60})
    happyfox.statuses()
    happyfox.statuses()
    with pytest.raises(RateLimited) as caught:
        happyfox.statuses()  # over the limit: locked out for 10 minutes (docs/vendors/happyfox.md#rate-limits)
    assert 590 <= caught.value.retry_after <= 600
    with pytest.raises(RateLimited):
        happyfox.categories()  # still locked out, whatever the endpoint
    assert [c["status"] for c in sandbox.calls("happyfox")] == [200, 200, 429, 429]  # no inline retry


def test_paced_client_stays_under_the_limit(sandbox: Any) -> None:
    # The fake allows 3 calls in any second, and so does the client, with no margin: HappyFox sends no quota
    # headers, so the window's own log keeps it (a 429 is a 10-minute lock-out: docs/vendors/happyfox.md#rate-limits).
    sandbox.limits(happyfox={"requests": 3, "per_seconds": 1})
    paced = make_client(sandbox, requests=3, per_seconds=1, pacer=pacing.MemoryPacer(), attempts=1)
    for _ in range(5):
        paced.priorities()
    assert [c["status"] for c in sandbox.calls("happyfox")] == [200] * 5
    sandbox.reset()
    sandbox.limits(happyfox={"requests": 3, "per_seconds": 0.8})
    unpaced = make_client(sandbox, attempts=1)
    with pytest.raises(RateLimited):
        for _ in range(5):
            unpaced.priorities()


# ---------------------------------------------------------------- the fake's own shapes (docs/vendors/happyfox.md)

def test_fake_speaks_happyfox_shapes(sandbox: Any, happyfox: HappyFoxClient) -> None:
    raw = httpx.Client(base_url=f"{sandbox.base_url}/api/1.1/json", timeout=5,
                       auth=(sandbox.credentials["happyfox_api_key"], sandbox.credentials["happyfox_auth_code"]))
    anonymous = httpx.get(f"{sandbox.base_url}/api/1.1/json/statuses/", timeout=5)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert raw.get("/statuses").status_code == 404  # every path ends in "/"
    missing = raw.post("/tickets/", json={"category": 1, "text": "x", "name": "A", "email": "a@example.com"})
    assert missing.status_code == 400
    assert missing.json() == {"error": [{"field": "subject", "errors": ["This field is required."]}]}
    assert raw.get("/tickets/", params={"size": 51}).status_code == 400
    ids = [new_ticket(happyfox, key=f"s{i}").id for i in range(3)]
    happyfox.update_ticket(ids[0], 1, status=7)
    second = raw.get("/tickets/", params={"size": 2, "page": 2, "status": "_all"}).json()
    assert second["page_info"] == {"count": 1, "start_index": 3, "end_index": 3, "last_index": 3, "page_count": 2}
    assert [t["id"] for t in second["data"]] == ids[2:]
    # With `q` and no `status`, only the pending statuses are searched (docs/vendors/happyfox.md#observed-behaviour).
    pending = raw.get("/tickets/", params={"q": 'contact:"anna.kovacs@example.com"'}).json()
    assert [t["id"] for t in pending["data"]] == ids[1:]
    assert parse_time(pending["data"][0]["created_at"]) <= datetime.now(timezone.utc)
    raw.close()
