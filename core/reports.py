"""A report entered by staff for a channel Switchboard does not receive itself (post, fax, social media, in
person, or a phone call noted by hand). The admin API and the CLI validate it with the same model."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .addresses import mailbox

if TYPE_CHECKING:
    from .settings import InputSpec

MANUAL_CHANNELS = ("post", "fax", "social", "in_person", "phone", "email")


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
    language: Literal["hu", "en"] = "hu"
    key: str | None = Field(default=None, max_length=120, description="idempotency key; a repeat is ignored")

    @field_validator("email")
    @classmethod
    def _single_mailbox(cls, value: str | None) -> str | None:
        return mailbox(value) if value else None  # InvalidAddress is a ValueError: a field error

    def too_long(self, limits: "InputSpec") -> dict[str, str]:
        """{field: error} for each text longer than the YAML allows (config `input`)."""
        return limits.too_long(self.model_dump(include={"subject", "details", "first_name", "last_name", "phone",
                                                        "category"}))

    @model_validator(mode="after")
    def _reachable(self) -> "ManualReport":
        if not self.email and not self.phone:
            raise ValueError("an email or a phone number is required")
        return self
