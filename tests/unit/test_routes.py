"""The routing table (flows/routes.py) against what the setup guide asks admins to subscribe to, and against the
payload fixtures that show each routed event's shape."""
from __future__ import annotations

import re
from pathlib import Path

from flows import routes

ROOT = Path(__file__).resolve().parents[2]
# Sources of our own: their payloads are written by our admin API and CLI, not by a vendor.
OWN_SOURCES = {"manual", "admin", "privacy"}  # privacy: mail our poll reads and stores (flows/privacy/requests.py)


def subscribed() -> set[tuple[str, str]]:
    """The vendor events docs/vendors.md tells an admin to subscribe to."""
    guide = (ROOT / "docs" / "vendors.md").read_text()
    events = {("form", "form"), ("happyfox", "ticket")}  # the signed form and the smart rule's one kind
    aircall = re.search(r'"events": \[([^\]]*)\]', guide)
    assert aircall, "docs/vendors.md no longer shows the Aircall webhook's events"
    events |= {("aircall", name) for name in re.findall(r'"([\w.]+)"', aircall.group(1))}
    hubspot = guide[guide.index("## HubSpot"):]
    events |= {("hubspot", name) for name in re.findall(r"`((?:contact|ticket)\.\w+)`", hubspot)}
    return events


def fixture_kinds(source: str) -> set[str]:
    names = [path.stem.split("__")[0] for path in (ROOT / "webhooks" / source / "fixtures").glob("*.json")]
    if source == "form":
        return {"form"} if names else set()
    if source == "happyfox":  # ticket.created, ticket.updated: one kind, "ticket"
        return {name.split(".")[0] for name in names}
    return set(names)


def test_every_subscribed_event_is_routed() -> None:
    wanted = subscribed()
    assert ("hubspot", "ticket.propertyChange") in wanted and ("aircall", "call.ended") in wanted
    assert wanted - set(routes.ROUTES) == set()


def test_every_routed_vendor_event_has_a_fixture() -> None:
    for source, kind in routes.ROUTES:
        if source not in OWN_SOURCES:
            assert kind in fixture_kinds(source), f"no fixture in webhooks/{source}/fixtures for {kind}"


def test_every_route_names_handlers_that_take_an_event() -> None:
    for key, handlers in routes.ROUTES.items():
        assert handlers and len(set(handlers)) == len(handlers), key
        for handler in handlers:
            assert callable(handler) and handler.__module__.startswith("flows."), (key, handler)
    assert routes.handlers_for("aircall", "call.created") == ()
    assert not routes.is_routed("hubspot", "contact.creation")
