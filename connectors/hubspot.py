"""HubSpot CRM on the official `hubspot-api-client`, with our own Policy around every call
(docs/vendors/hubspot.md#the-python-client): the client's urllib3 retries are off (they never retry POST on 429 and
end in MaxRetryError), each call carries `_request_timeout`, and answers are read raw (`_preload_content=False`) so
results are HubSpot's own JSON."""
from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsError
from hubspot.crm.contacts.exceptions import ApiException as ContactsError
from hubspot.crm.objects.calls.exceptions import ApiException as CallsError
from hubspot.crm.objects.emails.exceptions import ApiException as EmailsError
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesError
from hubspot.crm.properties.exceptions import ApiException as PropertiesError
from hubspot.crm.tickets.exceptions import ApiException as TicketsError

from core.settings import Settings

from . import pacing
from .errors import Conflict, NotFound, Unavailable
from .policy import Policy, for_vendor, raise_for_status
from .records import HubSpotObject, parse, parse_each

VENDOR = "hubspot"
API_ERRORS = (ContactsError, TicketsError, CallsError, EmailsError, AssociationsError, PipelinesError,
              PropertiesError)
EXISTING_ID = re.compile(r"Existing ID: (\d+)")  # the 409 body of a duplicate contact (docs/vendors/hubspot.md#errors)
BATCH = 100         # inputs per batch call (docs/vendors/hubspot.md#batch-upsert-by-email)
PAGE = 100          # search page size (HubSpot allows up to 200)
SEARCH_CAP = 10_000  # a search query never pages past this many results
# Association type ids, HUBSPOT_DEFINED, from the object being created to the target
# (docs/vendors/hubspot.md#associations).
TICKET_TO_CONTACT, CALL_TO_CONTACT, CALL_TO_TICKET = 16, 194, 220
EMAIL_TO_CONTACT, EMAIL_TO_TICKET = 198, 224
CONTACT_PROPERTIES = ["email", "firstname", "lastname", "phone", "mobilephone", "company"]
TICKET_PROPERTIES = ["subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_category",
                     "hs_ticket_priority", "hs_lastmodifieddate", "createdate"]
CALL_PROPERTIES = ["hs_timestamp", "hs_call_title", "hs_call_body", "hs_call_direction", "hs_call_duration",
                   "hs_call_status", "hs_call_from_number", "hs_call_to_number", "hs_call_recording_url"]


def _association(target_id: str, type_id: int) -> dict[str, Any]:
    return {"to": {"id": str(target_id)},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}


def _ms(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("expected an aware UTC datetime")
    return str(int(moment.astimezone(timezone.utc).timestamp() * 1000))


class HubSpotClient:
    search_cap = SEARCH_CAP

    def __init__(self, base_url: str, access_token: str, policy: Policy,
                 search_limit: tuple[int, float] | None = (4, 1.0)) -> None:
        self.policy = policy
        self.search_limit = search_limit
        # retry=False: no urllib3 retries, so a failure reaches the Policy at once as its own exception.
        api = HubSpot(access_token=access_token, host=base_url.rstrip("/"), retry=False)
        crm = api.crm
        # Each discovery attribute builds a new ApiClient (and connection pool): build each once.
        self._contacts, self._contacts_batch = crm.contacts.basic_api, crm.contacts.batch_api
        self._contacts_search = crm.contacts.search_api
        self._tickets, self._tickets_search = crm.tickets.basic_api, crm.tickets.search_api
        self._calls, self._calls_search = crm.objects.calls.basic_api, crm.objects.calls.search_api
        self._emails, self._emails_search = crm.objects.emails.basic_api, crm.objects.emails.search_api
        self._associations = crm.associations.v4.basic_api
        self._pipelines, self._properties = crm.pipelines.pipelines_api, crm.properties.core_api

    @classmethod
    def from_settings(cls, settings: Settings, pacer: pacing.Pacer | None = None) -> HubSpotClient:
        search = settings.config.limits.get("hubspot_search")
        return cls(settings.env.base_url("hubspot"), settings.env.secret("hubspot_access_token"),
                   for_vendor(VENDOR, settings, pacer=pacer),
                   (search.requests, search.per_seconds) if search else None)

    # ---------------------------------------------------------------- transport

    def _call(self, method: Callable[..., Any], *args: Any, search: bool = False, idempotent: bool = True,
              **kwargs: Any) -> Any:
        """One API call under the policy; HubSpot's JSON answer, or None for 204. `idempotent=False` for a create:
        HubSpot's basic create takes no idempotency key, so a lost answer is not retried inline (policy.py)."""
        def request() -> Any:
            with contextlib.ExitStack() as stack:
                if search and self.search_limit and self.policy.pacer is not None:
                    stack.enter_context(pacing.paced(self.policy.pacer, "hubspot_search",
                                                     pacing.Rate(*self.search_limit)))
                try:
                    # With `_preload_content=False` the client hands back urllib3's response itself (public API):
                    # its headers carry HubSpot's count of the window.
                    response = method(*args, _request_timeout=self.policy.timeout, _preload_content=False, **kwargs)
                    self.policy.observe(response.headers)
                    data = response.data  # read inside: the body can still be cut off
                except API_ERRORS as exc:
                    self.policy.observe(exc.headers or {})
                    self._raise(exc)
                except urllib3.exceptions.HTTPError as exc:  # timeouts, refused or dropped connections, MaxRetryError
                    raise Unavailable(VENDOR, type(exc).__name__) from exc
                return json.loads(data) if data else None
        return self.policy.call(request, idempotent=idempotent)

    @staticmethod
    def _raise(exc: Any) -> None:
        if not exc.status:  # the client's own wrapper around an SSL or protocol failure
            raise Unavailable(VENDOR, str(exc.reason))
        try:
            raise_for_status(VENDOR, exc.status, dict(exc.headers or {}), exc.body)
        except Conflict as conflict:
            if conflict.existing_id is None:
                found = EXISTING_ID.search(conflict.message)
                conflict.existing_id = found.group(1) if found else None
            raise
        raise Unavailable(VENDOR, f"unexpected HTTP {exc.status}", exc.status)  # a 1xx/3xx the client let through

    def _search(self, api: Any, filter_groups: list[dict[str, Any]], properties: list[str],
                sort: str = "hs_object_id", limit: int = PAGE) -> Iterator[HubSpotObject]:
        """All pages of a search. HubSpot's OpenAPI requires `after` and `sorts` and types a sort as a property
        name (ascending); a stable sort keeps the pages from overlapping."""
        after: str | None = "0"
        while True:
            body = {"filterGroups": filter_groups, "properties": properties, "sorts": [sort],
                    "limit": min(limit, self.search_cap), "after": after}
            page = self._call(api.do_search, body, search=True)
            yield from parse_each(VENDOR, HubSpotObject, page.get("results", []))
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after or int(after) >= self.search_cap:
                return

    def _delete(self, method: Callable[..., Any], *args: Any) -> str:
        try:
            self._call(method, *args)
        except NotFound:
            return "gone"  # a 404 on delete is success: erasure is idempotent
        return "deleted"

    # ---------------------------------------------------------------- contacts

    def upsert_contacts(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Batch upsert by email, 100 a call; a repeated email within the input is merged (HubSpot refuses
        duplicate ids in one batch)."""
        merged: dict[str, dict[str, Any]] = {}
        for properties in inputs:
            email = str(properties["email"]).strip().lower()
            merged[email] = {**merged.get(email, {}), **properties, "email": email}
        results: list[dict[str, Any]] = []
        items = list(merged.items())
        for start in range(0, len(items), BATCH):
            chunk = [{"idProperty": "email", "id": email, "properties": props}
                     for email, props in items[start:start + BATCH]]
            answer = self._call(self._contacts_batch.upsert, {"inputs": chunk})
            results += [{"id": r["id"], "properties": r.get("properties", {}), "new": r.get("new")}
                        for r in answer.get("results", [])]
        return results

    def upsert_contact(self, properties: dict[str, Any]) -> str:
        return str(self.upsert_contacts([properties])[0]["id"])

    def _object(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> HubSpotObject:
        """One call whose answer is a CRM object, parsed."""
        return parse(VENDOR, HubSpotObject, self._call(method, *args, **kwargs))

    def create_contact(self, properties: dict[str, Any]) -> HubSpotObject:
        """Create one contact; Conflict with `existing_id` when the email is taken."""
        return self._object(self._contacts.create, {"properties": properties, "associations": []}, idempotent=False)

    def search_contacts(self, email: str | None = None, phone: str | None = None) -> list[HubSpotObject]:
        groups: list[dict[str, Any]] = []
        if email:
            groups.append({"filters": [{"propertyName": "email", "operator": "EQ", "value": email.lower()}]})
        if phone:
            groups += [{"filters": [{"propertyName": name, "operator": "EQ", "value": phone}]}
                       for name in ("phone", "mobilephone")]
        if not groups:
            raise ValueError("search_contacts needs an email or a phone")
        return list(self._search(self._contacts_search, groups, CONTACT_PROPERTIES))

    def get_contact(self, contact_id: str, properties: list[str] | None = None) -> HubSpotObject:
        return self._object(self._contacts.get_by_id, str(contact_id), properties=properties or CONTACT_PROPERTIES)

    def update_contact(self, contact_id: str, properties: dict[str, Any]) -> HubSpotObject:
        return self._object(self._contacts.update, str(contact_id), {"properties": properties})

    def gdpr_delete_contact(self, contact_id: str) -> str:
        """Permanent delete (`purge`); associated tickets and calls stay: archive them separately
        (docs/vendors/hubspot.md#deletion)."""
        return self._delete(self._contacts.purge, {"objectId": str(contact_id)})

    def archive_contact(self, contact_id: str) -> str:
        return self._delete(self._contacts.archive, str(contact_id))

    def merge_contacts(self, primary_id: str, other_id: str) -> HubSpotObject | None:
        """Merge `other_id` into `primary_id` (`POST /crm/v3/objects/contacts/merge`, `basic_api.merge`); the
        merged contact, or None when either is gone (404: merged already, or deleted). HubSpot documents that the
        merged contact may get a new id, both old ids then reading as it (docs/vendors/hubspot.md#merge): take the
        id from the answer. Not retried
        inline after a lost answer, since a second merge of the same pair is refused."""
        body = {"primaryObjectId": str(primary_id), "objectIdToMerge": str(other_id)}
        try:
            return self._object(self._contacts.merge, body, idempotent=False)
        except NotFound:
            return None

    # ---------------------------------------------------------------- tickets

    def create_ticket(self, properties: dict[str, Any], contact_id: str | None = None) -> HubSpotObject:
        associations = [_association(contact_id, TICKET_TO_CONTACT)] if contact_id else []
        return self._object(self._tickets.create, {"properties": properties, "associations": associations},
                            idempotent=False)

    def update_ticket(self, ticket_id: str, properties: dict[str, Any]) -> HubSpotObject:
        return self._object(self._tickets.update, str(ticket_id), {"properties": properties})

    def get_ticket(self, ticket_id: str, properties: list[str] | None = None) -> HubSpotObject:
        return self._object(self._tickets.get_by_id, str(ticket_id), properties=properties or TICKET_PROPERTIES)

    def find_ticket(self, property_name: str, value: str) -> HubSpotObject | None:
        groups = [{"filters": [{"propertyName": property_name, "operator": "EQ", "value": str(value)}]}]
        return next(self._search(self._tickets_search, groups, [*TICKET_PROPERTIES, property_name], limit=1),
                    None)

    def tickets_by_ids(self, ticket_ids: list[str], properties: list[str] | None = None) -> Iterator[HubSpotObject]:
        """Many tickets at once: one search with `hs_object_id IN` per 100 ids. Search is eventually consistent
        (docs/vendors/hubspot.md#search): a ticket just created may be missing; confirm a miss with `get_ticket`."""
        ids = [str(i) for i in ticket_ids]
        for start in range(0, len(ids), PAGE):
            chunk = ids[start:start + PAGE]
            groups = [{"filters": [{"propertyName": "hs_object_id", "operator": "IN", "values": chunk}]}]
            yield from self._search(self._tickets_search, groups, properties or TICKET_PROPERTIES, limit=len(chunk))

    def contacts_modified_since(self, since: datetime) -> Iterator[HubSpotObject]:
        """Every contact modified at or after `since` (`lastmodifieddate`), oldest first, with its email and phones:
        what the reconcile's identity pass reads (docs/vendors/hubspot.md#search). Capped as one query is (10,000);
        the pass's cursor moves past what it read, so a later run reads on."""
        groups = [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": _ms(since)}]}]
        yield from self._search(self._contacts_search, groups, CONTACT_PROPERTIES + ["lastmodifieddate"],
                                "lastmodifieddate")

    def tickets_modified_since(self, since: datetime) -> Iterator[HubSpotObject]:
        """Every ticket modified at or after `since`, oldest first. Past the 10,000-result cap of one query it
        queries again from the last modification time seen (docs/vendors/hubspot.md#search)."""
        floor, seen = _ms(since), set[str]()
        last: str | None
        while True:
            groups = [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": floor}]}]
            count, last = 0, None
            for ticket in self._search(self._tickets_search, groups, TICKET_PROPERTIES, "hs_lastmodifieddate"):
                count += 1
                last = ticket.prop("hs_lastmodifieddate") or last
                if ticket.id not in seen:
                    seen.add(ticket.id)
                    yield ticket
            if count < self.search_cap or last is None:
                return
            next_floor = _ms(datetime.fromisoformat(last.replace("Z", "+00:00")))
            if next_floor == floor:  # a whole query's worth in one millisecond: no way forward
                raise RuntimeError(f"more than {self.search_cap} tickets modified at {last}")
            floor = next_floor

    def archive_ticket(self, ticket_id: str) -> str:
        return self._delete(self._tickets.archive, str(ticket_id))

    # ---------------------------------------------------------------- calls

    def create_call(self, properties: dict[str, Any], contact_id: str,
                    ticket_id: str | None = None) -> HubSpotObject:
        associations = [_association(contact_id, CALL_TO_CONTACT)]
        if ticket_id:
            associations.append(_association(ticket_id, CALL_TO_TICKET))
        return self._object(self._calls.create, {"properties": properties, "associations": associations},
                            idempotent=False)

    def find_call(self, property_name: str, value: str) -> HubSpotObject | None:
        groups = [{"filters": [{"propertyName": property_name, "operator": "EQ", "value": str(value)}]}]
        return next(self._search(self._calls_search, groups, ["hs_timestamp", "hs_call_title", property_name],
                                 limit=1), None)

    def archive_call(self, call_id: str) -> str:
        return self._delete(self._calls.archive, str(call_id))

    def get_call(self, call_id: str, properties: list[str] | None = None) -> HubSpotObject:
        return self._object(self._calls.get_by_id, str(call_id), properties=properties or CALL_PROPERTIES)

    def update_call(self, call_id: str, properties: dict[str, Any]) -> HubSpotObject:
        """Erasure blanks a call's numbers and texts before archiving it: an archived call keeps its properties
        in the recycle bin for 90 days (docs/vendors/hubspot.md#deletion)."""
        return self._object(self._calls.update, str(call_id), {"properties": properties})

    # ---------------------------------------------------------------- emails

    def create_email(self, properties: dict[str, Any], contact_id: str | None,
                     ticket_id: str | None = None) -> HubSpotObject:
        """An email engagement (a mail we sent), on the contact and the ticket (docs/vendors/hubspot.md#emails)."""
        associations = [_association(contact_id, EMAIL_TO_CONTACT)] if contact_id else []
        if ticket_id:
            associations.append(_association(ticket_id, EMAIL_TO_TICKET))
        return self._object(self._emails.create, {"properties": properties, "associations": associations},
                            idempotent=False)

    def find_email(self, property_name: str, value: str) -> HubSpotObject | None:
        groups = [{"filters": [{"propertyName": property_name, "operator": "EQ", "value": str(value)}]}]
        return next(self._search(self._emails_search, groups, ["hs_timestamp", property_name], limit=1), None)

    # ---------------------------------------------------------------- associations and discovery

    def associated_ids(self, from_type: str, object_id: str, to_type: str) -> list[str]:
        ids: list[str] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 500, **({"after": after} if after else {})}
            page = self._call(self._associations.get_page, from_type, str(object_id), to_type, **kwargs)
            ids += [str(r["toObjectId"]) for r in page.get("results", [])]  # an int in some answers
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return ids

    def pipelines(self, object_type: str = "tickets") -> list[dict[str, Any]]:
        return list(self._call(self._pipelines.get_all, object_type).get("results", []))

    def properties(self, object_type: str) -> list[dict[str, Any]]:
        return list(self._call(self._properties.get_all, object_type).get("results", []))
