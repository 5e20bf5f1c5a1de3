"""A report entered by staff for a channel Switchboard does not receive itself (post, fax, social media, in
person, or a phone call noted by hand). The admin API and the CLI validate it with the same model."""
from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from .addresses import mailbox

if TYPE_CHECKING:
    from .settings import InputSpec

MANUAL_CHANNELS = ("post", "fax", "social", "in_person", "phone", "email")
CLOCK_SKEW = timedelta(minutes=5)


class ManualAttachment(BaseModel):
    """A file that came with the report (a scanned letter, a photo), base64 as the form's are stored."""
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=100)
    data_b64: str = Field(min_length=1)

    @field_validator("data_b64")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError("not base64") from None
        return value

    @property
    def size(self) -> int:
        return len(base64.b64decode(self.data_b64))


class ManualReport(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: Literal["post", "fax", "social", "in_person", "phone", "email"]
    email: str | None = None
    phone: str | None = Field(default=None, min_length=6, max_length=40)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    subject: str = Field(min_length=1, max_length=500)
    details: str = ""
    category: str = "egyeb"
    language: Literal["hu", "en"] | None = None  # None: the customer's language from earlier tickets, else hu
    # When the report reached us (a letter's arrival, a call's time): its deadlines count from it. None: now.
    received_at: AwareDatetime | None = None
    attachments: list[ManualAttachment] = []
    key: str | None = Field(default=None, max_length=120, description="idempotency key; a repeat is ignored")

    @field_validator("email")
    @classmethod
    def _single_mailbox(cls, value: str | None) -> str | None:
        return mailbox(value) if value else None  # InvalidAddress is a ValueError: a field error

    def too_long(self, limits: "InputSpec") -> dict[str, str]:
        """{field: error} for each text longer than the YAML allows (config `input`)."""
        return limits.too_long(self.model_dump(include={"subject", "details", "first_name", "last_name", "phone",
                                                        "category"}))
    @field_validator("received_at")
    @classmethod
    def _not_in_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value > datetime.now(timezone.utc) + CLOCK_SKEW:
            raise ValueError("must not be in the future")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> "ManualReport":
        if not self.email and not self.phone:
            raise ValueError("an email or a phone number is required")
        return self


def attachment_problems(report: ManualReport, config: Any) -> dict[str, str]:
    """{field: problem} of attachments over the YAML size limit or of a type it does not allow (the form's
    limits, `attachments_max_bytes` / `attachments_allowed_types`)."""
    problems = {}
    for index, item in enumerate(report.attachments):
        if item.size > config.attachments_max_bytes:
            problems[f"attachments.{index}"] = f"more than {config.attachments_max_bytes} bytes"
        elif item.content_type not in config.attachments_allowed_types:
            problems[f"attachments.{index}.content_type"] = \
                f"must be one of {', '.join(config.attachments_allowed_types)}"
    return problems
