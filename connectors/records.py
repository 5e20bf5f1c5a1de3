"""What the vendors answer, parsed once at the edge: each connector turns a vendor's JSON into these models before
a flow sees it, as flows/payloads.py does for inbound webhooks.

Only what Switchboard reads is modelled and checked; vendors add fields freely, and every record keeps the answer
as it came in `raw` (an access export hands the whole vendor record to the person). An answer that lacks a field
we need, or holds one in the wrong type, raises `BadAnswer`, a permanent error whose message names each field
path and pydantic's error type, never a value (values are personal data).
"""
from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Annotated, Any, TypeVar

from pydantic import (BaseModel, ConfigDict, Field, PlainValidator, PrivateAttr, ValidationError,
                      ValidatorFunctionWrapHandler, model_validator)
from pydantic_core import PydanticCustomError

from .errors import BadAnswer

R = TypeVar("R", bound="Record")
MAX_PROBLEMS = 5  # enough to act on; the message stays one short line


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        record = handler(value)
        if isinstance(value, dict) and isinstance(record, Record):
            record._raw = value
        return record

    @property
    def raw(self) -> dict[str, Any]:
        """The vendor's answer as it came, every field included."""
        return self._raw


def parse(vendor: str, model: type[R], body: Any) -> R:
    """`body` as `model`, or BadAnswer naming what is wrong."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        # `from None`: the ValidationError's text quotes the input, which must not reach a log.
        raise BadAnswer(vendor, f"unexpected {model.__name__}: "
                                f"{describe(exc.errors(include_url=False, include_input=False))}") from None


def parse_each(vendor: str, model: type[R], items: Iterable[Any]) -> Iterator[R]:
    for item in items:
        yield parse(vendor, model, item)


def describe(errors: list[Any]) -> str:
    """Pydantic's errors as `path type` pairs, the first few only."""
    problems = [f"{path(e['loc'])} {e['type']}".strip() for e in errors[:MAX_PROBLEMS]]
    more = f" (and {len(errors) - MAX_PROBLEMS} more)" if len(errors) > MAX_PROBLEMS else ""
    return f"{'; '.join(problems)}{more}"


def path(loc: tuple[int | str, ...]) -> str:
    """('data', 'contact', 'emails', 0, 'value') -> 'data.contact.emails[0].value'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise PydanticCustomError("id_type", "an integer or a string")
    return str(value)


# A vendor id, integer or text, as text: one error per field, where `int | str` would report each branch.
Id = Annotated[str, PlainValidator(_id)]


# ---------------------------------------------------------------- HappyFox (docs/vendors/happyfox.md#the-ticket-object)

def parse_time(value: str | None) -> datetime | None:
    """A HappyFox timestamp (always UTC, docs/vendors/happyfox.md#base-url-auth-and-formats; fractions of a second
    allowed) as an aware datetime."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace(" ", "T")).replace(tzinfo=timezone.utc)


def _happyfox_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("happyfox_time", "a YYYY-MM-DD HH:MM:SS text")
    try:
        return parse_time(value)
    except ValueError:
        raise PydanticCustomError("happyfox_time", "a YYYY-MM-DD HH:MM:SS text") from None


HappyFoxTime = Annotated[datetime | None, PlainValidator(_happyfox_time)]


class HappyFoxStatus(Record):
    id: int | None = None
    name: str | None = None
    behavior: str | None = None   # "pending" or "completed"


class HappyFoxCategory(Record):
    id: int | None = None
    name: str | None = None


class HappyFoxPhone(Record):
    number: str | None = None


class HappyFoxUser(Record):
    """A contact (docs/vendors/happyfox.md#contacts)."""
    id: int
    name: str | None = None
    email: str | None = None
    primary_phone: HappyFoxPhone | None = None


class HappyFoxCustomField(Record):
    id: int | None = None
    name: str | None = None
    value: Any = None


class HappyFoxMessage(Record):
    message_type: str | None = None   # "p" for a private note, null for a reply
    text: str | None = None
    html: str | None = None
    plaintext: str | None = None

    def contains(self, marker: str) -> bool:
        return any(marker in (part or "") for part in (self.text, self.html, self.plaintext))


class HappyFoxActor(Record):
    type: str | None = None   # "staff" or "user"


class HappyFoxStatusChange(Record):
    new_name: str | None = None


class HappyFoxUpdate(Record):
    update_id: int | None = None
    timestamp: HappyFoxTime = None
    by: HappyFoxActor | None = None
    message: HappyFoxMessage | None = None
    status_change: HappyFoxStatusChange | None = None

    @property
    def public_staff_reply(self) -> bool:
        """A reply staff wrote that the customer sees (a private note is not one)."""
        return self.message is not None and self.message.message_type != "p" and self.by is not None \
            and self.by.type == "staff"


class HappyFoxTicketFields(Record):
    """A ticket's fields without the id: what a webhook body may hold (only a hint, flows/payloads.py)."""
    display_id: str | None = None
    subject: str | None = None
    first_message: str | None = None
    status: HappyFoxStatus | str | None = None
    category: HappyFoxCategory | int | None = None
    user: HappyFoxUser | None = None
    custom_fields: list[HappyFoxCustomField] = []
    updates: list[HappyFoxUpdate] = []
    created_at: HappyFoxTime = None
    last_modified: HappyFoxTime = None
    last_updated_at: HappyFoxTime = None
    last_staff_reply_at: HappyFoxTime = None

    @property
    def status_name(self) -> str | None:
        return self.status.name if isinstance(self.status, HappyFoxStatus) else self.status

    @property
    def status_behavior(self) -> str | None:
        return self.status.behavior if isinstance(self.status, HappyFoxStatus) else None

    @property
    def category_id(self) -> int | None:
        return self.category.id if isinstance(self.category, HappyFoxCategory) else self.category

    @property
    def modified_at(self) -> datetime | None:
        return self.last_modified or self.last_updated_at

    def custom_field(self, wanted: int | str) -> HappyFoxCustomField | None:
        """The custom field with this id or name."""
        return next((f for f in self.custom_fields if str(f.id) == str(wanted) or f.name == wanted), None)


class HappyFoxTicket(HappyFoxTicketFields):
    id: int


class HappyFoxNamed(Record):
    """An entry of a discovery list (statuses, categories, custom fields, staff)."""
    id: int
    name: str | None = None


# ---------------------------------------------------------------- HubSpot (docs/vendors/hubspot.md)

class HubSpotObject(Record):
    """A CRM object (contact, ticket, call): its id and the properties asked for, every value text or null."""
    id: Id
    properties: dict[str, str | None] = {}
    created_at: str | None = Field(None, alias="createdAt")

    def prop(self, name: str) -> str | None:
        return self.properties.get(name)


# ---------------------------------------------------------------- Aircall (docs/vendors/aircall.md)

class AircallValue(Record):
    """One of a contact's phone numbers or emails; `id` addresses it at `/phone_details/:id` or `/email_details/:id`
    (docs/vendors/aircall.md#contacts)."""
    id: Id | None = None
    label: str | None = None
    value: str | None = None


class AircallContactRecord(Record):
    id: Id
    first_name: str | None = None
    last_name: str | None = None
    phone_numbers: list[AircallValue] = []
    emails: list[AircallValue] = []


class AircallCallRecord(Record):
    """A call; times are Unix seconds."""
    id: Id
    started_at: int | None = None
    recording: str | None = None
    voicemail: str | None = None
    archived: bool | None = None

    @property
    def started(self) -> datetime | None:
        return datetime.fromtimestamp(self.started_at, timezone.utc) if self.started_at is not None else None


# ---------------------------------------------------------------- Gmail (docs/vendors/gmail.md)

class GmailMessage(Record):
    id: str
    internal_date: str | int | None = Field(None, alias="internalDate")   # epoch milliseconds, as text

    @property
    def received(self) -> datetime | None:
        stamp = str(self.internal_date or "")
        return datetime.fromtimestamp(int(stamp) / 1000, timezone.utc) if stamp.isdigit() else None


class GmailBody(Record):
    data: str | None = None    # base64url, unpadded


class GmailPart(Record):
    mime_type: str = Field("", alias="mimeType")
    headers: list[dict[str, Any]] = []
    body: GmailBody | None = None
    parts: list[GmailPart] = []


class GmailMail(GmailMessage):
    """A message read whole (`format=full`): its headers and its first plain-text part, for a mail that Switchboard
    acts on (the privacy mailbox)."""
    payload: GmailPart

    def header(self, name: str) -> str:
        return next((str(h.get("value") or "") for h in self.payload.headers
                     if str(h.get("name", "")).lower() == name.lower()), "")

    def text(self) -> str:
        stack = [self.payload]
        while stack:
            part = stack.pop(0)
            if part.mime_type.startswith("text/plain") and part.body is not None and part.body.data:
                raw = base64.urlsafe_b64decode(part.body.data + "=" * (-len(part.body.data) % 4))
                return raw.decode("utf-8", errors="replace")
            stack.extend(part.parts)
        return ""
