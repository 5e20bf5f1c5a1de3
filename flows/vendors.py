"""The connectors a flow talks through, built once per process from settings (tests point them at the sandbox)."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from core import settings as settings_module
from core.settings import Settings

if TYPE_CHECKING:  # each client's module is imported on first use only
    from connectors.aircall import AircallClient
    from connectors.gmail import GmailClient
    from connectors.happyfox import HappyFoxClient
    from connectors.hubspot import HubSpotClient
    from connectors.mail import Mailer


class Vendors:
    """Each client is built on first use, so a flow that needs only HubSpot builds only HubSpot's."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @functools.cached_property
    def hubspot(self) -> HubSpotClient:
        from connectors.hubspot import HubSpotClient
        return HubSpotClient.from_settings(self.settings)

    @functools.cached_property
    def happyfox(self) -> HappyFoxClient:
        from connectors.happyfox import HappyFoxClient
        return HappyFoxClient.from_settings(self.settings)

    @functools.cached_property
    def aircall(self) -> AircallClient:
        from connectors.aircall import AircallClient
        return AircallClient.from_settings(self.settings)

    @functools.cached_property
    def gmail(self) -> GmailClient:
        from connectors.gmail import GmailClient
        return GmailClient.from_settings(self.settings)

    @functools.cached_property
    def mail(self) -> Mailer:
        from connectors.mail import Mailer
        return Mailer.from_settings(self.settings)


class MissingSetup(LookupError):
    """The vendor account lacks what Switchboard needs (a custom field, a property): no retry can help."""


_current: list[Vendors] = []


def get() -> Vendors:
    """The vendors for the process's current settings, rebuilt when the settings change (tests). The settings
    object itself is compared, not its id(): a new object may reuse a freed one's id."""
    loaded = settings_module.get()
    if not _current or _current[0].settings is not loaded:
        _current[:] = [Vendors(loaded)]
    return _current[0]


def happyfox_field_id(field: int | str) -> int:
    """A HappyFox ticket custom field's id: given as an id in YAML, or looked up by name once per process (one
    discovery call, so that steady-state intake needs no more than the writes themselves)."""
    if isinstance(field, int) or str(field).isdigit():
        return int(field)
    current = get()
    cache: dict[str, int] = current.__dict__.setdefault("_happyfox_fields", {})
    if field not in cache:
        for item in current.happyfox.ticket_custom_fields():
            cache[str(item.name)] = item.id
        if field not in cache:
            raise MissingSetup(f"HappyFox has no ticket custom field named {field!r}: create it, or give its id "
                              "in config intake.happyfox_key_field / happyfox_fields")
    return cache[field]
