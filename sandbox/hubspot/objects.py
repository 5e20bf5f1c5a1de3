"""CRM v3 objects of the HubSpot fake: contacts, tickets and calls (list, create, read, patch, archive, search),
contact batch upsert by email and GDPR delete (docs/vendors/hubspot.md)."""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..state import current
from ..emit import notify
from ..vendor import Refused

TYPES = ("contacts", "tickets", "calls", "emails")
# Properties HubSpot returns when a request names none (docs/vendors/hubspot.md#search for contacts; tickets and calls
# follow the same idea).
DEFAULTS = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "tickets": ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline", "hs_pipeline_stage",
                "hs_ticket_category", "hs_ticket_priority", "subject"),
    "calls": ("createdate", "hs_lastmodifieddate", "hs_object_id", "hs_timestamp"),
    "emails": ("createdate", "hs_lastmodifieddate", "hs_object_id", "hs_timestamp"),
}
DATES = {"createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_timestamp", "closed_date"}
# Association type id -> (from, to) (docs/vendors/hubspot.md#associations); HUBSPOT_DEFINED pairs are each other's
# reverse.
ASSOCIATION_TYPES = {15: ("contacts", "tickets"), 16: ("tickets", "contacts"), 193: ("contacts", "calls"),
                     194: ("calls", "contacts"), 219: ("tickets", "calls"), 220: ("calls", "tickets"),
                     197: ("contacts", "emails"), 198: ("emails", "contacts"), 223: ("tickets", "emails"),
                     224: ("emails", "tickets")}
REVERSE = {15: 16, 16: 15, 193: 194, 194: 193, 219: 220, 220: 219, 197: 198, 198: 197, 223: 224, 224: 223}
MAX_RESULTS = 10_000
# A list page (`GET /crm/v3/objects/{type}`): 10 by default (the OpenAPI documents), at most 100 (guessed from
# HubSpot's guides; more is refused as a 400 here) (docs/vendors/hubspot.md#listing-objects).
LIST_DEFAULT, LIST_MAX = 10, 100
APP_ID = "54321"  # the app id in the webhook fixtures

ErrorFn = Callable[[int, str], Response]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_ms(value: Any) -> int | None:
    """A HubSpot datetime (epoch ms, as number or string, or ISO-8601) as epoch ms."""
    if value in (None, ""):
        return None
    return _text_ms(str(value))


@functools.lru_cache(maxsize=65536)  # a search compares every object's stamp: each is parsed once, not each time
def _text_ms(text: str) -> int | None:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def hubspot() -> dict[str, Any]:
    return current().state["hubspot"]


def live(object_type: str, object_id: str) -> dict[str, Any] | None:
    obj = hubspot()[object_type].get(str(object_id))
    return obj if obj is not None and not obj["archived"] else None


def contact_by_email(email: str) -> dict[str, Any] | None:
    email = email.strip().lower()
    return next((c for c in hubspot()["contacts"].values()
                 if not c["archived"] and (c["properties"].get("email") or "").lower() == email), None)


def render(obj: dict[str, Any], object_type: str, requested: list[str] | None = None) -> dict[str, Any]:
    names = list(DEFAULTS[object_type]) + [n for n in (requested or []) if n not in DEFAULTS[object_type]]
    # Unset properties are left out: the OpenAPI documents type every value as a non-null string (the live API
    # has been seen answering null for them; consumers read with .get() either way).
    properties = {n: obj["properties"][n] for n in names if obj["properties"].get(n) is not None}
    return {"id": obj["id"], "properties": properties, "createdAt": obj["createdAt"],
            "updatedAt": obj["updatedAt"], "archived": obj["archived"]}


def requested_properties() -> list[str]:
    """`?properties=a,b` or `?properties=a&properties=b` (the official client sends the second form)."""
    return [n for value in request.args.getlist("properties") for n in value.split(",") if n]


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Refused(400, "Invalid input JSON on line 1, column 1: Cannot build object from the request body")
    return data


def clean(properties: Any) -> dict[str, str | None]:
    if not isinstance(properties, dict):
        raise Refused(400, "Invalid input JSON: 'properties' must be an object")
    # HubSpot stores every property value as a string (docs/vendors/hubspot.md#event-payload).
    return {str(k): None if v is None else str(v) for k, v in properties.items()}


def touch(obj: dict[str, Any], object_type: str, stamp: str | None = None) -> None:
    stamp = stamp or now_iso()
    obj["updatedAt"] = stamp
    obj["properties"]["hs_lastmodifieddate"] = stamp
    if object_type == "contacts":
        obj["properties"]["lastmodifieddate"] = stamp


def new_object(object_type: str, properties: dict[str, str | None], stamp: str | None = None) -> dict[str, Any]:
    """Stored as a create stores it; `stamp` dates it (the control API's seeding), else now."""
    object_id = str(current().next_id())
    stamp = stamp or now_iso()
    properties = {**properties, "hs_object_id": object_id, "createdate": stamp}
    if object_type == "contacts" and properties.get("email"):
        properties["email"] = properties["email"].strip().lower()  # HubSpot lower-cases emails
    if object_type == "tickets":
        properties.setdefault("hs_pipeline", "0")
    if object_type in ("calls", "emails") and properties.get("hs_timestamp"):
        ms = to_ms(properties["hs_timestamp"])
        if ms is not None:
            properties["hs_timestamp"] = datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(
                timespec="milliseconds").replace("+00:00", "Z")
    obj = {"id": object_id, "properties": properties, "createdAt": stamp, "updatedAt": stamp, "archived": False}
    touch(obj, object_type, stamp)
    hubspot()[object_type][object_id] = obj
    return obj


def seed_mirror(contact: dict[str, Any], ticket: dict[str, Any],
                when: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """A contact and a ticket associated to it, as their creates would have made them `when` (the control API's
    seeding; the caller checks the contact's email is new). (contact, ticket)."""
    stamp = when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    made = new_object("contacts", clean(contact), stamp)
    properties = clean(ticket)
    properties.setdefault("hs_pipeline", "0")
    check_new("tickets", properties)
    mirror = new_object("tickets", properties, stamp)
    hubspot()["associations"].append({"from": ["tickets", mirror["id"]], "to": ["contacts", made["id"]],
                                      "typeId": 16})
    return made, mirror


def check_new(object_type: str, properties: dict[str, str | None]) -> None:
    if object_type == "contacts":
        existing = properties.get("email") and contact_by_email(properties["email"])
        if existing:
            raise Refused(409, f"Contact already exists. Existing ID: {existing['id']}")
    if object_type == "tickets":
        missing = [n for n in ("subject", "hs_pipeline_stage") if not properties.get(n)]
        if missing:
            raise Refused(400, f"Property values were not valid: missing required properties {missing}")
        pipeline = next((p for p in hubspot()["pipelines"]["tickets"]
                         if p["id"] == (properties.get("hs_pipeline") or "0")), None)
        if pipeline is None or properties["hs_pipeline_stage"] not in {s["id"] for s in pipeline["stages"]}:
            raise Refused(400, "Property values were not valid: hs_pipeline_stage is not a stage of hs_pipeline")
    if object_type in ("calls", "emails") and to_ms(properties.get("hs_timestamp")) is None:
        raise Refused(400, "Property values were not valid: hs_timestamp is required")


def inline_associations(object_type: str, associations: Any) -> list[dict[str, Any]]:
    """The `associations` of a create body as stored links, after checking each type id and target."""
    links = []
    if not isinstance(associations, (list, type(None))) or not all(
            isinstance(a, dict) and isinstance(a.get("to") or {}, dict) and isinstance(a.get("types") or [], list)
            and all(isinstance(t, dict) for t in a.get("types") or []) for a in associations or []):
        raise Refused(400, "Invalid input JSON: associations must be [{\"to\": {\"id\"}, \"types\": [{...}]}]")
    for association in associations or []:
        target = str((association.get("to") or {}).get("id", ""))
        for spec in association.get("types") or []:
            type_id = spec.get("associationTypeId")
            pair = ASSOCIATION_TYPES.get(type_id)
            if pair is None or pair[0] != object_type:
                raise Refused(400, f"{type_id} is not a valid association type id for {object_type}")
            if live(pair[1], target) is None:
                raise Refused(400, f"One or more associations are invalid: {pair[1]} {target} does not exist")
            links.append({"from": [object_type, None], "to": [pair[1], target], "typeId": type_id})
    return links


def drop_associations(object_type: str, object_id: str) -> None:
    state = hubspot()
    state["associations"] = [a for a in state["associations"]
                             if [object_type, object_id] not in (a["from"], a["to"])]


def announce(subscription_type: str, object_id: str, changes: dict[str, Any] | None = None) -> None:
    """The webhook HubSpot sends for a change made through the API (a no-op without --webhook-url)."""
    for name, value in (changes or {None: None}).items():
        # Made through the API by an app: HubSpot names the source, so receivers can tell echoes of their own
        # writes (docs/vendors/hubspot.md#event-payload; the value list is guessed).
        data: dict[str, Any] = {"objectId": int(object_id), "changeSource": "INTEGRATION", "sourceId": APP_ID}
        if name is not None:
            data.update(propertyName=name, propertyValue="" if value is None else str(value))
        notify("hubspot", subscription_type, data)


def known(object_type: str) -> None:
    if object_type not in TYPES:
        raise Refused(404, f"Unable to infer object type from: {object_type}")


def _flag(name: str) -> bool:
    value = request.args.get(name, "false").lower()
    if value not in ("true", "false"):
        raise Refused(400, f"Unable to parse query parameter {name}: expected true or false, got {value!r}")
    return value == "true"


def count_arg(name: str, default: int) -> int:
    text = request.args.get(name)
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError:
        raise Refused(400, f"Unable to parse query parameter {name}: {text!r} is not an integer") from None


def associated(object_type: str, object_id: str, wanted: list[str]) -> dict[str, Any]:
    """`associations` of a list or read answer: the linked ids per named type (unknown names ignored, as the
    OpenAPI documents), `{"tickets": {"results": [{"id", "type": "contact_to_ticket"}]}}`."""
    found: dict[str, Any] = {}
    for target in wanted:
        links = []
        for link in hubspot()["associations"]:
            for near, far, type_id in ((link["from"], link["to"], link["typeId"]),
                                       (link["to"], link["from"], REVERSE.get(link["typeId"]))):
                if near == [object_type, object_id] and far[0] == target and live(*far) is not None:
                    label = f"{object_type[:-1]}_to_{target[:-1]}"
                    links.append({"id": far[1], "type": label})
        if links:
            found[target] = {"results": sorted(links, key=lambda a: int(a["id"]))}
    return found


def register(bp: Blueprint, error: ErrorFn) -> None:

    @bp.get("/crm/v3/objects/<object_type>")
    def list_page(object_type: str) -> Response:
        """`basic_api.get_page`: objects by id, `limit` ≤ 100, `after` from `paging.next.after`, `properties`, and
        `archived=true` for only the archived ones (docs/vendors/hubspot.md#listing-objects)."""
        known(object_type)
        limit, archived = count_arg("limit", LIST_DEFAULT), _flag("archived")
        if not 1 <= limit <= LIST_MAX:
            raise Refused(400, f"limit must be between 1 and {LIST_MAX}")
        after = request.args.get("after") or "0"
        if not after.isdigit():
            raise Refused(400, f"Unable to parse query parameter after: {after!r} is not a paging cursor")
        wanted = [t for value in request.args.getlist("associations") for t in value.split(",") if t in TYPES]
        with current().lock:
            # The cursor is the last id seen, so that objects created or archived between pages shift nothing.
            found = sorted((o for o in hubspot()[object_type].values()
                            if o["archived"] == archived and int(o["id"]) > int(after)), key=lambda o: int(o["id"]))
            results = []
            for obj in found[:limit]:
                shown = render(obj, object_type, requested_properties())
                if obj["archived"] and obj.get("archivedAt"):
                    shown["archivedAt"] = obj["archivedAt"]
                history = [n for value in request.args.getlist("propertiesWithHistory") for n in value.split(",")
                           if obj["properties"].get(n) is not None]
                if history:  # the fake keeps no history: the current value is the only one it can show
                    shown["propertiesWithHistory"] = {n: [{"value": obj["properties"][n], "sourceType": "API",
                                                           "timestamp": obj["updatedAt"]}] for n in history}
                links = associated(object_type, obj["id"], wanted)
                if links:
                    shown["associations"] = links
                results.append(shown)
        answer: dict[str, Any] = {"results": results}
        if len(found) > limit:
            cursor = results[-1]["id"]
            answer["paging"] = {"next": {"after": cursor, "link": f"{request.base_url}?after={cursor}"}}
        return jsonify(answer)

    @bp.post("/crm/v3/objects/<object_type>")
    def create(object_type: str) -> tuple[Response, int]:
        known(object_type)
        data = body()
        properties = clean(data.get("properties", {}))
        with current().lock:
            check_new(object_type, properties)
            links = inline_associations(object_type, data.get("associations"))
            obj = new_object(object_type, properties)
            for link in links:
                link["from"][1] = obj["id"]
            hubspot()["associations"].extend(links)
            answer = render(obj, object_type, list(properties))
        return jsonify(answer), 201

    @bp.get("/crm/v3/objects/<object_type>/<object_id>")
    def get(object_type: str, object_id: str) -> Response:
        known(object_type)
        with current().lock:
            if request.args.get("idProperty") == "email" and object_type == "contacts":
                obj = contact_by_email(object_id)
            else:
                obj = live(object_type, object_id)
            if obj is None:
                raise Refused(404, "resource not found")
            return jsonify(render(obj, object_type, requested_properties()))

    @bp.patch("/crm/v3/objects/<object_type>/<object_id>")
    def patch(object_type: str, object_id: str) -> Response:
        known(object_type)
        properties = clean(body().get("properties", {}))
        with current().lock:
            obj = live(object_type, object_id)
            if obj is None:
                raise Refused(404, "resource not found")
            changed = {k: v for k, v in properties.items() if obj["properties"].get(k) != v}
            obj["properties"].update(properties)
            touch(obj, object_type)
            answer = render(obj, object_type, list(properties))
        if changed:
            announce(f"{object_type[:-1]}.propertyChange", object_id, changed)
        return jsonify(answer)

    @bp.delete("/crm/v3/objects/<object_type>/<object_id>")
    def archive(object_type: str, object_id: str) -> Response:
        """204; an id that never existed answers 404 (HubSpot may answer 204 too: docs/vendors/hubspot.md#deletion)."""
        known(object_type)
        with current().lock:
            obj = hubspot()[object_type].get(object_id)
            if obj is None:
                raise Refused(404, "resource not found")
            was_live = not obj["archived"]
            obj["archived"] = True
            obj["archivedAt"] = now_iso()
        if was_live:
            announce(f"{object_type[:-1]}.deletion", object_id)
        return Response(status=204)

    @bp.post("/crm/v3/objects/contacts/gdpr-delete")
    def gdpr_delete() -> Response:
        """Permanent; removes the contact's associations, not the associated records. An unknown email is blocklisted
        and answered 204 (documented); an unknown id answers 404 (guessed) (docs/vendors/hubspot.md#deletion)."""
        data = body()
        object_id, by_email = str(data.get("objectId") or ""), data.get("idProperty") == "email"
        with current().lock:
            obj = contact_by_email(object_id) if by_email else live("contacts", object_id)
            if obj is None:
                if not by_email:
                    raise Refused(404, "resource not found")
                hubspot()["blocklist"].append(object_id.lower())
                return Response(status=204)
            del hubspot()["contacts"][obj["id"]]
            drop_associations("contacts", obj["id"])
        announce("contact.privacyDeletion", obj["id"])
        return Response(status=204)

    @bp.post("/crm/v3/objects/contacts/batch/upsert")
    def upsert() -> Response:
        inputs = body().get("inputs")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 100 or not all(isinstance(i, dict) for i in inputs):
            raise Refused(400, "inputs must hold between 1 and 100 objects")
        ids = [str(i.get("id", "")).strip().lower() for i in inputs]
        if any(i.get("idProperty") != "email" for i in inputs):
            raise Refused(400, "Unable to perform update/upsert by non-unique 0-1 property")
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates or not all(ids):
            raise Refused(400, f"Duplicate IDs found in batch input: {duplicates}")
        started, results = now_iso(), []
        with current().lock:
            for email, item in zip(ids, inputs):
                properties = {**clean(item.get("properties", {})), "email": email}
                obj = contact_by_email(email)
                if obj is None:
                    obj, new = new_object("contacts", properties), True
                else:
                    obj["properties"].update(properties)
                    touch(obj, "contacts")
                    new = False
                results.append({**render(obj, "contacts", list(properties)), "new": new})
        return jsonify(status="COMPLETE", results=results, startedAt=started, completedAt=now_iso())
