"""The connectors a flow talks through, built once per process from settings (tests point them at the sandbox)."""
from __future__ import annotations

import functools
from typing import Any

from core import settings as settings_module
from core.settings import Settings


class Vendors:
    """Each client is built on first use, so a flow that needs only HubSpot builds only HubSpot's."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @functools.cached_property
    def hubspot(self) -> Any:
        from connectors.hubspot import HubSpotClient
        return HubSpotClient.from_settings(self.settings)

    @functools.cached_property
    def happyfox(self) -> Any:
        from connectors.happyfox import HappyFoxClient
        return HappyFoxClient.from_settings(self.settings)

    @functools.cached_property
    def aircall(self) -> Any:
        from connectors.aircall import AircallClient
        return AircallClient.from_settings(self.settings)

    @functools.cached_property
    def gmail(self) -> Any:
        from connectors.gmail import GmailClient
        return GmailClient.from_settings(self.settings)

    @functools.cached_property
    def mail(self) -> Any:
        from connectors.mail import Mailer
        return Mailer.from_settings(self.settings)


_current: dict[int, Vendors] = {}


def get() -> Vendors:
    """The vendors for the process's current settings."""
    loaded = settings_module.get()
    if id(loaded) not in _current:
        _current.clear()
        _current[id(loaded)] = Vendors(loaded)
    return _current[id(loaded)]
