"""A report entered by staff for a channel Switchboard does not receive itself (post, fax, social media, in
person, or a phone call noted by hand). The admin API and the CLI validate it with the same model."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MANUAL_CHANNELS = ("post", "fax", "social", "in_person", "phone", "email")


class ManualReport(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: Literal["post", "fax", "social", "in_person", "phone", "email"]
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(default=None, min_length=6, max_length=40)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    subject: str = Field(min_length=1, max_length=500)
    details: str = ""
    category: str = "egyeb"
    language: Literal["hu", "en"] = "hu"
    key: str | None = Field(default=None, max_length=120, description="idempotency key; a repeat is ignored")

    @model_validator(mode="after")
    def _reachable(self) -> "ManualReport":
        if not self.email and not self.phone:
            raise ValueError("an email or a phone number is required")
        return self
