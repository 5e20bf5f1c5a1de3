"""Finding a person's email addresses and phone numbers in free text and JSON, however the number was written
(`+36301234567`, `+36 30 123 4567`, `06-30-123-4567`, `36301234567`): what erasure redacts and verifies by, and
what the access export selects inbox events by."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from flows.identity import normalise_email, normalise_phone

# A run of digits with the separators people write numbers with; the digits are compared, not the spelling.
NUMBER = re.compile(r"(?:\+|\b)\d[\d \-./()]{5,24}\d")
MAX_PREFIX = 4  # digits a spelling may put before the national number: 36, 06, 0036


def national_number(e164: str) -> str:
    return str(phonenumbers.parse(e164).national_number)


@dataclass
class Traces:
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)   # E.164

    @classmethod
    def of(cls, emails: Iterable[str | None] = (), phones: Iterable[str | None] = ()) -> Traces:
        return cls({e for e in map(normalise_email, emails) if e}, {p for p in map(normalise_phone, phones) if p})

    def __bool__(self) -> bool:
        return bool(self.emails or self.phones)

    def in_text(self, text: str | None) -> bool:
        if not text:
            return False
        lowered = text.lower()
        if any(email in lowered for email in self.emails):
            return True
        if not self.phones:
            return False
        nationals = [national_number(p) for p in self.phones]
        for match in NUMBER.finditer(text):
            digits = re.sub(r"\D", "", match.group())
            if any(digits.endswith(n) and len(digits) - len(n) <= MAX_PREFIX for n in nationals):
                return True
        return False

    def in_value(self, value: Any) -> bool:
        """In a column's value: text, or any JSON (dicts, lists) by its serialised form."""
        if value is None or isinstance(value, (bool, int, float)):
            return False
        if not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False, default=str)
        return self.in_text(value)
