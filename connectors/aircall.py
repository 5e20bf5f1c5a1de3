"""Aircall public API v1 client on `requests` (docs/connectors.md; the API's facts in docs/vendors/aircall.md).

Basic auth api_id:api_token (docs/vendors/aircall.md#auth); 401 and 403 both mean the credentials do not work;
a 429 waits for `X-AircallApi-Reset` (docs/vendors/aircall.md#rate-limits, read by `policy.retry_after`); lists
page with `page`/`per_page` ≤ 50 until `meta.next_page_link` is null (docs/vendors/aircall.md#pagination-and-errors).
Single objects come wrapped (`{"call": {...}}`); this client unwraps them.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import requests

from core.settings import Settings

from . import pacing, policy
from .errors import BadAnswer, NotFound, Unavailable
from .policy import Policy
from .records import AircallCallRecord, AircallContactRecord, parse, parse_each

VENDOR = "aircall"
PER_PAGE = 50  # the maximum (docs/vendors/aircall.md#pagination-and-errors)


class AircallClient:
    def __init__(self, base_url: str, api_id: str, api_token: str, policy: Policy,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.session = session or requests.Session()
        self.session.auth = (api_id, api_token)
        self.session.headers.update({"Accept": "application/json"})

    @classmethod
    def from_settings(cls, settings: Settings, pacer: pacing.Pacer | None = None) -> AircallClient:
        env = settings.env
        return cls(env.base_url(VENDOR), env.secret("aircall_api_id"), env.secret("aircall_api_token"),
                   policy.for_vendor(VENDOR, settings, pacer=pacer))

    # ------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, params: dict[str, Any] | None = None,
                 json: dict[str, Any] | None = None, idempotent: bool = True) -> requests.Response:
        """`idempotent=False` for a create: Aircall has no idempotency key, so a lost answer is not retried
        inline (connectors/policy.py)."""
        url = f"{self.base_url}{path}"

        def send() -> requests.Response:
            try:
                response = self.session.request(method, url, params=params, json=json, timeout=self.policy.timeout)
            except requests.Timeout:
                raise Unavailable(VENDOR, f"no answer within {self.policy.timeout}s") from None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise Unavailable(VENDOR, f"connection failed ({type(exc).__name__})") from None
            self.policy.observe(response.headers)
            policy.raise_for_status(VENDOR, response.status_code, _wait_headers(response), response.content)
            return response

        return self.policy.call(send, idempotent=idempotent)

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = self._request(method, path, **kwargs).json()
        if not isinstance(body, dict):
            raise BadAnswer(VENDOR, f"expected a JSON object from {method} {path}")
        return body

    def _delete(self, path: str) -> str:
        try:
            self._request("DELETE", path)
        except NotFound:  # erasure is idempotent: already gone is done
            return "gone"
        return "deleted"

    def _pages(self, path: str, resource: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            body = self._json("GET", path, params={**params, "page": page, "per_page": PER_PAGE})
            yield from body.get(resource) or []
            if not (body.get("meta") or {}).get("next_page_link"):
                return
            page += 1

    # ------------------------------------------------------------ calls

    def get_call(self, call_id: int | str) -> AircallCallRecord:
        return parse(VENDOR, AircallCallRecord,
                     self._json("GET", f"/v1/calls/{call_id}", params={"fetch_contact": "true"}).get("call"))

    def calls(self, since: datetime | None = None) -> Iterator[AircallCallRecord]:
        """Calls started at or after `since` (all within Aircall's 6-month history when None), oldest first."""
        params: dict[str, Any] = {"order": "asc", "fetch_contact": "true"}
        if since is not None:
            params["from"] = _unix(since)
        return parse_each(VENDOR, AircallCallRecord, self._pages("/v1/calls", "calls", params))

    def search_calls(self, phone_number: str, since: datetime | None = None) -> Iterator[AircallCallRecord]:
        """The calls with this external number, every page, oldest first (`GET /v1/calls/search`,
        docs/vendors/aircall.md#calls): only the person's calls are read, never the company's whole history.
        `phone_number` in E.164 (`+36301234567`)."""
        if not phone_number:
            raise ValueError("search_calls needs a phone number")
        params: dict[str, Any] = {"phone_number": phone_number, "order": "asc"}
        if since is not None:
            params["from"] = _unix(since)
        return parse_each(VENDOR, AircallCallRecord, self._pages("/v1/calls/search", "calls", params))

    def archive_call(self, call_id: int | str) -> str:
        """`PUT /v1/calls/:id/archive` (seen-in-code, docs/vendors/aircall.md#calls): the call leaves the active
        history. Aircall has no call delete. Archiving twice is harmless, so the PUT is retried like a GET;
        `"gone"` when the call is not there."""
        try:
            self._request("PUT", f"/v1/calls/{call_id}/archive")
        except NotFound:
            return "gone"
        return "archived"

    def delete_recording(self, call_id: int | str) -> str:
        return self._delete(f"/v1/calls/{call_id}/recording")

    def delete_voicemail(self, call_id: int | str) -> str:
        return self._delete(f"/v1/calls/{call_id}/voicemail")

    # ------------------------------------------------------------ contacts

    def search_contacts(self, email: str | None = None, phone: str | None = None) -> list[AircallContactRecord]:
        """Shared contacts only (docs/vendors/aircall.md#contacts); `phone` in international format."""
        params = {k: v for k, v in (("email", email), ("phone_number", phone)) if v}
        if not params:
            raise ValueError("search_contacts needs an email or a phone")
        return list(parse_each(VENDOR, AircallContactRecord, self._pages("/v1/contacts/search", "contacts", params)))

    def create_contact(self, first_name: str, last_name: str, emails: Iterable[str] = (),
                       phones: Iterable[str] = ()) -> AircallContactRecord:
        body = {"first_name": first_name, "last_name": last_name, "is_shared": True,
                "phone_numbers": [{"label": "Work", "value": p} for p in phones],
                "emails": [{"label": "Work", "value": e} for e in emails]}
        return self._contact(self._json("POST", "/v1/contacts", json=body, idempotent=False))

    def update_contact(self, contact_id: int | str, **fields: Any) -> AircallContactRecord:
        """A POST, not a PUT; only first_name, last_name, company_name and information change
        (docs/vendors/aircall.md#contacts)."""
        return self._contact(self._json("POST", f"/v1/contacts/{contact_id}", json=fields))

    def get_contact(self, contact_id: int | str) -> AircallContactRecord:
        return self._contact(self._json("GET", f"/v1/contacts/{contact_id}"))

    @staticmethod
    def _contact(body: dict[str, Any]) -> AircallContactRecord:
        """Single objects come wrapped: `{"contact": {...}}`."""
        return parse(VENDOR, AircallContactRecord, body.get("contact"))

    def delete_contact(self, contact_id: int | str) -> str:
        return self._delete(f"/v1/contacts/{contact_id}")

    # A contact's phone numbers and emails are sub-resources: the contact update takes scalars only
    # (docs/vendors/aircall.md#contacts). `kind` is "phone" or "email".

    def add_detail(self, contact_id: int | str, kind: str, value: str, label: str = "Work") -> None:
        """`POST /v1/contacts/:id/<kind>_details`. Not idempotent (a second POST adds the value twice), so a lost
        answer is not retried inline: the caller reads the contact before adding again."""
        self._request("POST", _details_path(contact_id, kind), json={"label": label, "value": value},
                      idempotent=False)

    def update_detail(self, contact_id: int | str, kind: str, detail_id: int | str, value: str,
                      label: str | None = None) -> None:
        """`PUT /v1/contacts/:id/<kind>_details/:detail_id`: the value replaced in place, keeping its id; the same
        PUT twice is harmless, so it is retried like a GET."""
        body = {"value": value, **({"label": label} if label else {})}
        self._request("PUT", f"{_details_path(contact_id, kind)}/{detail_id}", json=body)

    def delete_detail(self, contact_id: int | str, kind: str, detail_id: int | str) -> str:
        """`DELETE /v1/contacts/:id/<kind>_details/:detail_id`; `"gone"` when it was not there."""
        return self._delete(f"{_details_path(contact_id, kind)}/{detail_id}")


DETAILS = {"phone": "phone_details", "email": "email_details"}


def _details_path(contact_id: int | str, kind: str) -> str:
    if kind not in DETAILS:
        raise ValueError(f"no Aircall contact detail of kind {kind!r}")
    return f"/v1/contacts/{contact_id}/{DETAILS[kind]}"


def _unix(moment: datetime) -> int:
    """`from`/`to` are UNIX seconds (docs/vendors/aircall.md#pagination-and-errors); a naive datetime is read as
    UTC."""
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


def _wait_headers(response: requests.Response) -> dict[str, str]:
    """The headers that say how long to wait. `X-AircallApi-Reset` may come on every answer
    (docs/vendors/aircall.md#rate-limits) and means when the window resets, which is a wait only on a 429: a 5xx
    must keep its short back-off."""
    if response.status_code == 429:
        return dict(response.headers)
    return {k: v for k, v in response.headers.items() if k.lower() != "x-aircallapi-reset"}
