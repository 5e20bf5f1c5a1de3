"""v4 associations, pipelines and property definitions of the HubSpot fake
(docs/vendors/hubspot.md#associations, docs/vendors/hubspot.md#tickets-and-pipelines)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from .objects import REVERSE, ErrorFn, Refused, count_arg, hubspot, live

# Object type names the API accepts in paths: plural, singular or the object type id.
ALIASES = {"contacts": "contacts", "contact": "contacts", "0-1": "contacts", "tickets": "tickets",
           "ticket": "tickets", "0-5": "tickets", "calls": "calls", "call": "calls", "0-48": "calls",
           "emails": "emails", "email": "emails", "0-49": "emails"}
TYPE_IDS = {"contacts": "0-1", "tickets": "0-5", "calls": "0-48", "emails": "0-49"}
EPOCH = "1970-01-01T00:00:00Z"  # default pipelines carry createdAt = 0 (pipelines OpenAPI)


def default_ticket_pipeline() -> dict[str, Any]:
    """The default ticket pipeline of a fresh portal, "0" with stages "1".."4"
    (docs/vendors/hubspot.md#tickets-and-pipelines)."""
    stages = [("1", "New", "OPEN"), ("2", "Waiting on contact", "OPEN"), ("3", "Waiting on us", "OPEN"),
              ("4", "Closed", "CLOSED")]
    return {"id": "0", "label": "Support Pipeline", "displayOrder": 0, "archived": False, "createdAt": EPOCH,
            "updatedAt": EPOCH,
            "stages": [{"id": sid, "label": label, "displayOrder": n, "archived": False, "createdAt": EPOCH,
                        "updatedAt": EPOCH, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                        "metadata": {"ticketState": state, "isClosed": "true" if state == "CLOSED" else "false"}}
                       for n, (sid, label, state) in enumerate(stages)]}


def _property(name: str, label: str, type_: str = "string", field: str = "text",
              options: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"name": name, "label": label, "type": type_, "fieldType": field, "description": "",
            "groupName": "information", "hidden": False, "formField": True, "hasUniqueValue": name == "email",
            "calculated": False, "externalOptions": False, "displayOrder": -1,
            "createdAt": EPOCH, "updatedAt": EPOCH,
            "modificationMetadata": {"archivable": False, "readOnlyDefinition": True, "readOnlyValue": False},
            "options": [{"label": o.replace("_", " ").title(), "value": o, "displayOrder": n, "hidden": False}
                        for n, o in enumerate(options)]}


PROPERTIES = {
    "contacts": [_property("email", "Email"), _property("firstname", "First Name"),
                 _property("lastname", "Last Name"), _property("phone", "Phone Number", field="phonenumber"),
                 _property("mobilephone", "Mobile Phone Number", field="phonenumber"),
                 _property("company", "Company Name"),
                 _property("lastmodifieddate", "Last Modified Date", "datetime", "date")],
    "tickets": [_property("subject", "Ticket name"), _property("content", "Ticket description", field="textarea"),
                _property("hs_pipeline", "Pipeline", "enumeration", "select", ("0",)),
                _property("hs_pipeline_stage", "Ticket status", "enumeration", "select", ("1", "2", "3", "4")),
                _property("hs_ticket_priority", "Priority", "enumeration", "select", ("LOW", "MEDIUM", "HIGH")),
                _property("hs_ticket_category", "Category", "enumeration", "checkbox",
                          ("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY")),
                _property("hs_lastmodifieddate", "Last Modified Date", "datetime", "date")],
    "calls": [_property("hs_timestamp", "Activity date", "datetime", "date"), _property("hs_call_title", "Title"),
              _property("hs_call_body", "Notes", field="html"),
              _property("hs_call_direction", "Direction", "enumeration", "select", ("INBOUND", "OUTBOUND")),
              _property("hs_call_duration", "Duration", "number", "number"),
              _property("hs_call_status", "Status", "enumeration", "select",
                        ("BUSY", "CANCELED", "COMPLETED", "FAILED", "IN_PROGRESS", "MISSED", "NO_ANSWER")),
              _property("hs_call_from_number", "From number"), _property("hs_call_to_number", "To number"),
              _property("hs_call_recording_url", "Recording URL")],
    "emails": [_property("hs_timestamp", "Activity date", "datetime", "date"),
               _property("hs_email_direction", "Email direction", "enumeration", "select",
                         ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL")),
               _property("hs_email_status", "Email send status", "enumeration", "select",
                         ("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT")),
               _property("hs_email_subject", "Subject"), _property("hs_email_text", "Body", field="textarea")],
}


def object_type(name: str) -> str:
    if name.lower() not in ALIASES:
        raise Refused(400, f"Unable to infer object type from: {name}")
    return ALIASES[name.lower()]


def register(bp: Blueprint, error: ErrorFn) -> None:
    @bp.get("/crm/v4/objects/<from_type>/<object_id>/associations/<to_type>")
    def associations(from_type: str, object_id: str, to_type: str) -> Response:
        source, target = object_type(from_type), object_type(to_type)
        limit, after = min(count_arg("limit", 500), 500), count_arg("after", 0)
        found: dict[str, list[int]] = {}
        for link in hubspot()["associations"]:
            for near, far, type_id in ((link["from"], link["to"], link["typeId"]),
                                       (link["to"], link["from"], REVERSE.get(link["typeId"]))):
                if near == [source, object_id] and far[0] == target and type_id and live(*far):
                    found.setdefault(far[1], []).append(type_id)
        ids = sorted(found, key=int)
        results = [{"toObjectId": i, "associationTypes": [
            {"category": "HUBSPOT_DEFINED", "typeId": t, "fromObjectTypeId": TYPE_IDS[source],
             "toObjectTypeId": TYPE_IDS[target]} for t in found[i]]} for i in ids[after:after + limit]]
        answer: dict[str, Any] = {"results": results}
        if after + limit < len(ids):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return jsonify(answer)

    @bp.get("/crm/v3/pipelines/<name>")
    def pipelines(name: str) -> Response:
        kind = object_type(name)
        return jsonify(results=hubspot()["pipelines"].get(kind, []))

    @bp.get("/crm/v3/pipelines/<name>/<pipeline_id>")
    def pipeline(name: str, pipeline_id: str) -> Response:
        found = [p for p in hubspot()["pipelines"].get(object_type(name), []) if p["id"] == pipeline_id]
        if not found:
            raise Refused(404, "resource not found")
        return jsonify(found[0])

    @bp.get("/crm/v3/properties/<name>")
    def properties(name: str) -> Response:
        return jsonify(results=PROPERTIES[object_type(name)])
