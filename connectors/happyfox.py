"""HappyFox Help Desk API v1.1 over httpx (docs/vendors/happyfox.md): Basic auth api key : auth code, every path
ending in `/`, JSON in and out (multipart when attachments go along), UTC `YYYY-MM-DD HH:MM:SS` timestamps.

Each HTTP call runs through the shared `Policy`. A 429 locks the client out for 10 minutes
(docs/vendors/happyfox.md#rate-limits): the fake and, defensively, we read its `Retry-After`; a wait that long is
beyond `max_inline_wait`, so `RateLimited` goes up and the job queue retries the job later instead of a worker
sleeping.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx

from core.settings import Settings

from . import pacing
from .errors import BadAnswer, NotFound, Unavailable
from .policy import Policy, for_vendor, raise_for_status
from .records import HappyFoxNamed, HappyFoxTicket, HappyFoxUser, parse, parse_each, parse_time

VENDOR = "happyfox"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
RECENT_PAGES = 4  # newest-first pages a changes listing reads before it bisects instead (`tickets`)


__all__ = ["HappyFoxClient", "modified_at", "parse_time"]


def modified_at(ticket: HappyFoxTicket) -> datetime | None:
    return ticket.modified_at


def _page_count(page: dict[str, Any]) -> int:
    return int((page.get("page_info") or {}).get("page_count") or 1)


def _page(body: Any) -> dict[str, Any]:
    # Old docs wrap a page in a one-element array, the current KB does not: accept both
    # (docs/vendors/happyfox.md#pagination).
    page = body[0] if isinstance(body, list) and body else body
    if not isinstance(page, dict):
        raise BadAnswer(VENDOR, "expected a page object")
    return page


class HappyFoxClient:
    def __init__(self, base_url: str, api_key: str, auth_code: str, policy: Policy, staff_id: int = 1):
        self.policy = policy
        # Writes must name a staff member; the API key is tied to none
        # (docs/vendors/happyfox.md#base-url-auth-and-formats).
        self.staff_id = staff_id
        # No redirects: Basic auth is dropped across hosts and http->https turns a POST into a GET
        # (docs/vendors/happyfox.md#base-url-auth-and-formats).
        self.http = httpx.Client(base_url=f"{base_url.rstrip('/')}/api/1.1/json", auth=(api_key, auth_code),
                                 timeout=policy.timeout, follow_redirects=False)
        self._custom_field_names: dict[int, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings, pacer: pacing.Pacer | None = None) -> HappyFoxClient:
        env = settings.env
        return cls(env.base_url("happyfox"), env.secret("happyfox_api_key"), env.secret("happyfox_auth_code"),
                   for_vendor(VENDOR, settings, pacer=pacer), staff_id=settings.config.intake.staff_id)

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------ transport

    def _request(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> Any:
        def attempt() -> Any:
            try:
                response = self.http.request(method, path, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise Unavailable(VENDOR, f"{type(exc).__name__} on {method} {path}") from None
            raise_for_status(VENDOR, response.status_code, response.headers, response.content)
            return response.json()
        return self.policy.call(attempt, idempotent=idempotent)

    def _get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params or None)

    def _post(self, path: str, payload: dict[str, Any], files: list[dict[str, Any]] | None = None,
              idempotent: bool = True) -> Any:
        """`idempotent=False` for a create: HappyFox has no idempotency key, so a lost answer is not retried inline
        (connectors/policy.py)."""
        if not files:
            return self._request("POST", path, json=payload, idempotent=idempotent)
        # Attachments need multipart, the part name `attachments` repeated (docs/vendors/happyfox.md#create-a-ticket);
        # nested values as JSON text.
        data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items() if v is not None}
        parts = [("attachments", (f["filename"], f["data"], f.get("content_type") or "application/octet-stream"))
                 for f in files]
        return self._request("POST", path, data=data, files=parts, idempotent=idempotent)

    # ------------------------------------------------------------ tickets

    def create_ticket(self, subject: str, text: str, category: int, email: str | None, name: str | None = None,
                      phone: str | None = None, priority: int | None = None,
                      custom_fields: dict[int, Any] | None = None,
                      attachments: list[dict[str, Any]] | None = None) -> HappyFoxTicket:
        """A ticket names its contact by email; HappyFox refuses one without (InvalidRequest)."""
        payload: dict[str, Any] = {"subject": subject, "text": text, "category": category, "email": email,
                                   "name": name or email}
        if phone:
            payload["phone"] = phone
        if priority is not None:
            payload["priority"] = priority
        payload.update({f"t-cf-{field_id}": value for field_id, value in (custom_fields or {}).items()})
        return self._ticket(self._post("/tickets/", payload, attachments, idempotent=False))

    def get_ticket(self, ticket_id: int | str) -> HappyFoxTicket:
        return self._ticket(self._get(f"/ticket/{int(ticket_id)}/"))

    @staticmethod
    def _ticket(body: Any) -> HappyFoxTicket:
        return parse(VENDOR, HappyFoxTicket, body)

    def _search(self, query: str | None, page_size: int, sort: str | None = None,
                first: Callable[[Callable[[int], dict[str, Any]]], int] | None = None) -> Iterator[HappyFoxTicket]:
        """Each ticket the search finds, page after page; `first` may choose the page to start at, given a reader
        of pages (pages it read are not asked for again)."""
        # `status=_all` always: without it a `q` search spans only the pending statuses
        # (docs/vendors/happyfox.md#list-and-search-tickets).
        params: dict[str, Any] = {"status": "_all", "size": min(page_size, 50)}
        if query:
            params["q"] = query
        if sort:
            params["sort"] = sort
        read: dict[int, dict[str, Any]] = {}

        def page(number: int) -> dict[str, Any]:
            if number not in read:
                read[number] = _page(self._get("/tickets/", **params, page=number))
            return read[number]

        number = first(page) if first is not None else 1
        while True:
            body = page(number)
            read.pop(number)
            yield from parse_each(VENDOR, HappyFoxTicket, body.get("data") or [])
            if number >= _page_count(body):
                return
            number += 1

    def tickets(self, updated_since: datetime | None = None, page_size: int = 50) -> Iterator[HappyFoxTicket]:
        """Every ticket, or those modified since `updated_since`, oldest change first. HappyFox filters by day only
        (docs/vendors/happyfox.md#list-and-search-tickets), so the listing of a busy day holds every ticket touched
        that day, and the exact cut is made here. The cost follows the changes, not the day's traffic: a few
        changes are read from the newest-first listing (`recent`); more are read oldest first from the first page
        with a change, found by bisecting the pages."""
        if updated_since is None:
            yield from self._search(None, page_size, sort="last_modifieda")
            return
        since = updated_since.astimezone(timezone.utc).replace(microsecond=0)
        query = f'last-modified-on-or-after:"{since:%Y/%m/%d}"'
        recent = self._recent(query, page_size, since)
        if recent is not None:
            yield from recent
            return

        def first(page: Callable[[int], dict[str, Any]]) -> int:
            low, high = 1, _page_count(page(1))
            while low < high:  # the first page whose newest ticket changed at or after `since`
                middle = (low + high) // 2
                newest = [t.modified_at for t in parse_each(VENDOR, HappyFoxTicket, page(middle).get("data") or [])]
                if newest and all(stamp is not None and stamp < since for stamp in newest):
                    low = middle + 1
                else:
                    high = middle
            return low

        for ticket in self._search(query, page_size, sort="last_modifieda", first=first):
            stamp = ticket.modified_at
            if stamp is None or stamp >= since:
                yield ticket

    def _recent(self, query: str, page_size: int, since: datetime) -> list[HappyFoxTicket] | None:
        """The tickets changed at or after `since`, oldest first, when they fit in the first `RECENT_PAGES` pages
        of the newest-first listing; None when more changed (then they are streamed, not held). A ticket changed
        while the pages are read moves to the front and pushes the others back: one is seen twice, none missed."""
        found: dict[int, HappyFoxTicket] = {}
        limit = RECENT_PAGES * min(page_size, 50)
        for seen, ticket in enumerate(self._search(query, page_size, sort="last_modifiedd")):
            stamp = ticket.modified_at
            if stamp is not None and stamp < since:
                break
            if seen >= limit:
                return None
            found.setdefault(ticket.id, ticket)
        return sorted(found.values(), key=lambda t: (t.modified_at or since, t.id))

    def find_ticket(self, custom_field_id: int, value: str) -> HappyFoxTicket | None:
        """Search-before-create on our idempotency custom field. `q` names custom fields by name, not id
        (docs/vendors/happyfox.md#list-and-search-tickets), and a search may match loosely, so the value is checked
        on each hit."""
        name = self._custom_field_name(custom_field_id)
        for ticket in self._search(f'"{name}":"{value}"', 50):
            for field in ticket.custom_fields:
                if field.id == custom_field_id and str(field.value) == str(value):
                    return ticket
        return None

    def tickets_of_contact(self, email: str) -> list[HappyFoxTicket]:
        """Every ticket of the contact with this email, in any status (`q=contact:"..."`,
        docs/vendors/happyfox.md#list-and-search-tickets)."""
        email = email.strip().lower()
        return [t for t in self._search(f'contact:"{email}"', 50)
                if str((t.user.email if t.user else None) or email).lower() == email]

    def _custom_field_name(self, field_id: int) -> str:
        if field_id not in self._custom_field_names:
            self._custom_field_names = {f.id: str(f.name) for f in self.ticket_custom_fields()}
        if field_id not in self._custom_field_names:
            raise NotFound(VENDOR, f"no ticket custom field {field_id}")
        return self._custom_field_names[field_id]

    def update_ticket(self, ticket_id: int | str, staff_id: int, status: int | None = None,
                      update: str | None = None, private_note: str | None = None) -> HappyFoxTicket:
        """A customer-visible reply (`staff_update/`) and/or a private note (`staff_pvtnote/`); a status change
        rides on the note when there is one, else on a staff update, with or without a message
        (docs/vendors/happyfox.md#replies-notes-and-status-changes). A reply or a note is a new entry each time it
        is posted, so it is not retried inline after a lost answer."""
        path = f"/ticket/{int(ticket_id)}"
        ticket: Any = None
        if update is not None or (status is not None and private_note is None):
            payload = {"staff": staff_id, "status": status, "text": update}
            ticket = self._post(f"{path}/staff_update/", {k: v for k, v in payload.items() if v is not None},
                                idempotent=update is None)
        if private_note is not None:
            payload = {"staff": staff_id, "text": private_note,
                       "status": status if update is None else None}
            ticket = self._post(f"{path}/staff_pvtnote/", {k: v for k, v in payload.items() if v is not None},
                                idempotent=False)
        return self._ticket(ticket) if ticket else self.get_ticket(ticket_id)

    def update_custom_fields(self, ticket_id: int | str, staff_id: int, fields: dict[int, Any]) -> HappyFoxTicket:
        """Set ticket custom fields (`t-cf-<id>`) with a message-less `staff_update/`: no reply, no notification
        (`update_customer` defaults to false); it appends an empty update
        (docs/vendors/happyfox.md#replies-notes-and-status-changes, docs/vendors/happyfox.md#observed-behaviour).
        The ticket after it."""
        payload: dict[str, Any] = {"staff": staff_id}
        payload.update({f"t-cf-{int(field_id)}": value for field_id, value in fields.items()})
        return self._ticket(self._post(f"/ticket/{int(ticket_id)}/staff_update/", payload))

    def assign(self, ticket_id: int | str, assignee: int) -> HappyFoxTicket:
        """Assign the ticket to a staff member with a message-less `staff_update/` (docs/vendors/happyfox.md); setting it twice is
        harmless. The ticket after it."""
        return self._ticket(self._post(f"/ticket/{int(ticket_id)}/staff_update/",
                                       {"staff": self.staff_id, "assignee": assignee}))

    def subscribe(self, ticket_id: int | str, staff_ids: list[int]) -> Any:
        """Subscribe staff members to the ticket (`subscribe/`, `data` + `staff_id`; docs/vendors/happyfox.md)."""
        return self._post(f"/ticket/{int(ticket_id)}/subscribe/", {"data": list(staff_ids), "staff_id": self.staff_id})

    def delete_ticket(self, ticket_id: int | str) -> str:
        try:  # POST, not DELETE, and `staff_id` rather than `staff` (docs/vendors/happyfox.md#delete-a-ticket)
            self._post(f"/ticket/{int(ticket_id)}/delete/", {"staff_id": self.staff_id})
        except NotFound:
            return "gone"
        return "deleted"

    # ------------------------------------------------------------ contacts (docs/vendors/happyfox.md#contacts)

    def get_user(self, user_id: int | str) -> HappyFoxUser:
        return parse(VENDOR, HappyFoxUser, self._get(f"/user/{user_id}/"))

    def search_users(self, query: str) -> list[HappyFoxUser]:
        """`query` is HappyFox's `field:value` form (`email:a@b.c`, `phone:3612345678`); a bare email or phone
        number is turned into it."""
        if ":" not in query:
            digits = "".join(ch for ch in query if ch.isdigit())
            query = f"email:{query}" if "@" in query else f"phone:{digits}"
        return list(parse_each(VENDOR, HappyFoxUser, _page(self._get("/users/", q=query, size=50)).get("data") or []))

    def create_user(self, name: str, email: str, phone: str | None = None) -> HappyFoxUser:
        payload: dict[str, Any] = {"name": name, "email": email}
        if phone:
            payload["phones"] = [{"type": "m", "number": phone, "is_primary": True}]
        return parse(VENDOR, HappyFoxUser, self._post("/users/", payload, idempotent=False))

    def update_user(self, user_id: int | str, **fields: Any) -> HappyFoxUser:
        return parse(VENDOR, HappyFoxUser, self._post(f"/user/{user_id}/", fields))

    def anonymise_user(self, user_id: int | str) -> HappyFoxUser:
        """No contact delete is documented (docs/vendors/happyfox.md#contacts): blank the name, email, phones and
        every custom field instead (custom fields left out of an update would be kept, so each is sent)."""
        blanks = {f"c-cf-{field.id}": None for field in self.user_custom_fields()}
        return self.update_user(user_id, name="", email=None, phones=[], **blanks)

    # ------------------------------------------------------------ discovery (docs/vendors/happyfox.md#discovery-lists)

    def _named(self, path: str) -> list[HappyFoxNamed]:
        return list(parse_each(VENDOR, HappyFoxNamed, self._get(path)))

    def categories(self) -> list[HappyFoxNamed]:
        return self._named("/categories/")

    def statuses(self) -> list[HappyFoxNamed]:
        return self._named("/statuses/")

    def priorities(self) -> list[HappyFoxNamed]:
        return self._named("/priorities/")

    def staff(self) -> list[HappyFoxNamed]:
        return self._named("/staff/")

    def ticket_custom_fields(self) -> list[HappyFoxNamed]:
        return self._named("/ticket_custom_fields/")

    def user_custom_fields(self) -> list[HappyFoxNamed]:
        return self._named("/user_custom_fields/")
