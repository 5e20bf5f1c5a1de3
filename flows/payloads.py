"""Stored inbound payloads, read through validators at the handler boundary.

A receiver (webhooks/) checks only what it needs to verify and dedupe an event; a handler reads more, and a
replayed or older row may hold less. A payload that lacks a field a handler needs, or holds one in the wrong
type, is not cured by retrying: `read` raises `inbox.Permanent`, so the event goes dead at its first attempt with
a reason that names each field path and pydantic's error type, never a value (values are personal data).

Only what a handler reads is checked; vendors add fields freely. A KeyError or TypeError raised deeper inside a
flow is a bug of ours and stays retryable.
"""
from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from connectors.records import HappyFoxTicketFields, Id, describe

from . import inbox

M = TypeVar("M", bound=BaseModel)


def read(event: inbox.Event, model: type[M]) -> M:
    """`event.payload` as `model`, or inbox.Permanent naming what is wrong."""
    if set(event.payload) == {"erased"}:
        raise invalid(event, "", "erased")  # redacted by an erasure (flows/privacy/erasure_steps.py, retention.py)
    try:
        return model.model_validate(event.payload)
    except ValidationError as exc:
        # `from None`: the ValidationError's text quotes the input, which must not reach a log.
        raise inbox.Permanent(f"invalid {event.source} {event.kind} payload: "
                              f"{describe(exc.errors(include_url=False, include_input=False))}") from None


def invalid(event: inbox.Event, path: str, problem: str) -> inbox.Permanent:
    """The error for a payload a handler cannot use, in the words `read` uses: `path` is where (empty for the
    whole payload), `problem` a code, never the value."""
    return inbox.Permanent(f"invalid {event.source} {event.kind} payload: {f'{path} ' if path else ''}{problem}")


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# A vendor's numeric id: 64-bit, as the database stores it. A larger one (10^30) can never be looked up, so it is
# a field error (Permanent) here rather than an overflow deep in a flow.
NumericId = Annotated[int, Field(ge=0, le=2**63 - 1)]
# Unix seconds before the year 10000, the most a datetime holds.
UnixTime = Annotated[int, Field(ge=0, lt=253_402_300_800)]


# ---------------------------------------------------------------- Aircall (docs/vendors/aircall.md#webhooks)

class AircallEmail(Payload):
    value: str | None = None


class AircallContact(Payload):
    id: Id | None = None
    first_name: str | None = None
    last_name: str | None = None
    emails: list[AircallEmail] | None = None


class AircallUser(Payload):
    name: str | None = None


class AircallNumber(Payload):
    digits: str | None = None
    e164_digits: str | None = None


class AircallTag(Payload):
    """A tag on a call (`call.tagged`, and `tags` of every call payload)."""
    id: Id
    name: str | None = None


class AircallComment(Payload):
    """An agent's note on a call (`call.commented`, and `comments` of every call payload)."""
    id: Id
    content: str | None = None
    posted_by: AircallUser | None = None


class AircallCall(Payload):
    """The call object in `data`; timestamps are Unix seconds."""
    id: Id
    direction: str | None = None
    raw_digits: str | None = None       # "anonymous" for a hidden number
    started_at: UnixTime | None = None
    answered_at: UnixTime | None = None
    ended_at: UnixTime | None = None
    duration: int | None = None
    voicemail: str | None = None
    recording: str | None = None
    asset: str | None = None
    missed_call_reason: str | None = None
    user: AircallUser | None = None
    number: AircallNumber | None = None
    contact: AircallContact | None = None
    tags: list[AircallTag] | None = None
    comments: list[AircallComment] | None = None


class AircallCallEvent(Payload):
    data: AircallCall


# ---------------------------------------------------------------- HappyFox (docs/vendors/happyfox.md#webhooks)

class HappyFoxTicketEvent(Payload):
    """The ticket a smart rule posted is only a hint (flows re-read the ticket): read as the connector reads a
    ticket (connectors/records.py), its id aside; every key is kept as it came in `hint.raw`."""
    ticket_id: NumericId
    ticket: HappyFoxTicketFields | None = None

    @property
    def hint(self) -> HappyFoxTicketFields:
        return self.ticket if self.ticket is not None else HappyFoxTicketFields()


# ---------------------------------------------------------------- HubSpot (docs/vendors/hubspot.md#event-payload)

class HubSpotEvent(Payload):
    """One webhook event; field paths in reasons are HubSpot's camelCase names."""
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    object_id: NumericId
    property_name: str | None = None
    property_value: str | None = None   # "always a string" (documented)
    source_id: str | None = None
    occurred_at: Annotated[int, Field(ge=0, lt=253_402_300_800_000)] | None = None  # epoch milliseconds


# ---------------------------------------------------------------- our own sources

class Attachment(Payload):
    filename: str
    content_type: str | None = None
    data: bytes = Field(validation_alias="data_b64")

    @field_validator("data", mode="before")
    @classmethod
    def _decode(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # bytes validation names the wrong type
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise PydanticCustomError("base64", "not base64") from None


class FormSubmission(Payload):
    """What webhooks/form stores: our field names, text values, attachments as base64."""
    form: str | None = None
    fields: dict[str, str] = {}
    attachments: list[Attachment] = []


class ConsentWithdrawal(Payload):
    """What `POST /admin/customers/consent-withdrawal` stores (webhooks/privacy.py)."""
    email: str | None = None
    phone: str | None = None

    @model_validator(mode="after")
    def _someone(self) -> "ConsentWithdrawal":
        if not (self.email or self.phone):
            raise PydanticCustomError("email_or_phone_required", "an email or a phone is required")
        return self


class PrivacyMail(Payload):
    """A mail to the privacy address as our poll stores it (flows/privacy/requests.py)."""
    message_id: str = Field(min_length=1)
    sender: str = Field(alias="from")
    subject: str = ""
    text: str = ""
    received_at: datetime


class HubSpotMerge(Payload):
    """`contact.merge`: the contact that survived (`newObjectId`, or the primary) and the ones merged into it."""
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    object_id: NumericId
    primary_object_id: NumericId | None = None
    merged_object_ids: list[NumericId] = []
    new_object_id: NumericId | None = None
