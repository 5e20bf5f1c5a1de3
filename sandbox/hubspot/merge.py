"""`POST /crm/v3/objects/contacts/merge` of the HubSpot fake, shaped by the contacts-v3 OpenAPI document
(`PublicMergeInput` in, `SimplePublicObject` out, scope `crm.objects.contacts.write`).

The merged contact survives under the primary id and the other is no longer returned by GET or search. HubSpot
itself now gives the merged record a new id and keeps both old ids readable as it (developers.hubspot.com/
changelog/updated-merge-functionality-for-contacts-and-companies); the connector takes the id from the answer,
so either works. As documented there, the primary's values stay current and the other's fill what the primary
lacks; its associations move to the primary. The other's email goes to `hs_additional_emails` and its id to
`hs_merged_object_ids` (knowledge.hubspot.com/records/merge-records names a "Merged record IDs" property; both
internal names are guessed).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from ..state import current
from ..emit import notify
from ..vendor import Refused
from .objects import APP_ID, ErrorFn, body, hubspot, live, render, touch

OWN = {"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_merged_object_ids",
       "hs_additional_emails"}


def _object_id(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise Refused(400, f"Invalid input JSON: {name} is required and must be a string")
    return str(value).strip()


def _joined(*values: str | None) -> str:
    items = [item for value in values for item in (value or "").split(";") if item]
    return ";".join(dict.fromkeys(items))


def absorb(primary: dict[str, Any], other: dict[str, Any]) -> int:
    """Fold `other` into `primary`; how many property values moved."""
    mine, theirs = primary["properties"], other["properties"]
    moved = 0
    for name, value in theirs.items():
        if name not in OWN and value not in (None, "") and mine.get(name) in (None, ""):
            mine[name] = value
            moved += 1
    if theirs.get("email") and theirs["email"] != mine.get("email"):
        mine["hs_additional_emails"] = _joined(mine.get("hs_additional_emails"), theirs["email"],
                                               theirs.get("hs_additional_emails"))
    mine["hs_merged_object_ids"] = _joined(mine.get("hs_merged_object_ids"), other["id"],
                                           theirs.get("hs_merged_object_ids"))
    state = hubspot()
    links: list[dict[str, Any]] = []
    for link in state["associations"]:
        moved_link = {**link, **{end: ["contacts", primary["id"]] for end in ("from", "to")
                                 if link[end] == ["contacts", other["id"]]}}
        if moved_link not in links:
            links.append(moved_link)
    state["associations"] = links
    del state["contacts"][other["id"]]
    touch(primary, "contacts")
    return moved


def register(bp: Blueprint, error: ErrorFn) -> None:
    @bp.post("/crm/v3/objects/contacts/merge")
    def merge() -> Response:
        data = body()
        primary_id, other_id = _object_id(data, "primaryObjectId"), _object_id(data, "objectIdToMerge")
        if primary_id == other_id:
            raise Refused(400, "A contact cannot be merged into itself")  # wording guessed
        with current().lock:
            primary, other = live("contacts", primary_id), live("contacts", other_id)
            if primary is None or other is None:
                raise Refused(404, "resource not found")
            moved = absorb(primary, other)
            answer = render(primary, "contacts", list(primary["properties"]))
        # The contact.merge event's fields (docs/vendors/hubspot.md#event-payload); made through the API, so marked as
        # ours.
        notify("hubspot", "contact.merge", {
            "objectId": int(primary_id), "primaryObjectId": int(primary_id), "mergedObjectIds": [int(other_id)],
            "newObjectId": int(primary_id), "numberOfPropertiesMoved": moved, "changeSource": "INTEGRATION",
            "sourceId": APP_ID})
        return jsonify(answer)
