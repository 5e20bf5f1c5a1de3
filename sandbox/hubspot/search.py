"""`POST /crm/v3/objects/{type}/search` of the HubSpot fake: filterGroups (OR of ANDs), sorts, `limit` ≤ 200,
`after` paging and the 10,000-result cap (docs/vendors/hubspot.md#search)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify

from ..state import current
from .objects import DATES, MAX_RESULTS, ErrorFn, Refused, body, hubspot, known, render, to_ms


def register(bp: Blueprint, error: ErrorFn) -> None:
    @bp.post("/crm/v3/objects/<object_type>/search")
    def search(object_type: str) -> Response:
        known(object_type)
        with current().lock:
            return jsonify(run(object_type, body()))


def _key(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in DATES:
        return to_ms(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        return text.lower()  # string comparisons in HubSpot search ignore case


def _compare(op: str, actual: Any, wanted: Any) -> bool:
    if actual is None or wanted is None:
        return op == "NEQ" and actual != wanted
    if type(actual) is not type(wanted):
        actual, wanted = str(actual), str(wanted)
    return {"EQ": actual == wanted, "NEQ": actual != wanted, "LT": actual < wanted, "LTE": actual <= wanted,
            "GT": actual > wanted, "GTE": actual >= wanted}[op]


def rule_test(rule: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """A test of an object's properties for one filter, its wanted values read once, not once an object: a
    search at 10,000 tickets tests each of them."""
    name, op = rule.get("propertyName", ""), rule.get("operator", "EQ")
    if op == "HAS_PROPERTY":
        return lambda properties: properties.get(name) not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return lambda properties: properties.get(name) in (None, "")
    if op in ("IN", "NOT_IN"):
        wanted = {_key(name, v) for v in rule.get("values") or []}
        if op == "IN":
            return lambda properties: _key(name, properties.get(name)) in wanted
        return lambda properties: _key(name, properties.get(name)) not in wanted
    if op == "BETWEEN":
        low, high = _key(name, rule.get("value")), _key(name, rule.get("highValue"))

        def between(properties: dict[str, Any]) -> bool:
            value = _key(name, properties.get(name))
            return value is not None and low is not None and high is not None and low <= value <= high
        return between
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(rule.get("value", "")).strip("*").lower()
        if op == "CONTAINS_TOKEN":
            return lambda properties: token in str(properties.get(name) or "").lower()
        return lambda properties: token not in str(properties.get(name) or "").lower()
    if op not in ("EQ", "NEQ", "LT", "LTE", "GT", "GTE"):
        raise Refused(400, f"Unsupported operator {op}")
    value = _key(name, rule.get("value"))
    return lambda properties: _compare(op, _key(name, properties.get(name)), value)


def _well_formed(query: dict[str, Any]) -> None:
    """The body's shape, as HubSpot's deserializer checks it: a 400 naming the part, never a crash."""
    groups = query.get("filterGroups") or []
    if not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("filters") or [], list)
            and all(isinstance(f, dict) and isinstance(f.get("propertyName", ""), str) for f in g.get("filters") or [])
            for g in groups):
        raise Refused(400, "Invalid input JSON: filterGroups must be [{\"filters\": [{\"propertyName\", ...}]}]")
    sorts = query.get("sorts") or []
    if not isinstance(sorts, list) or not all(isinstance(s, (str, dict)) for s in sorts):
        raise Refused(400, "Invalid input JSON: sorts must be a list of property names or {propertyName, direction}")
    properties = query.get("properties") or []
    if not isinstance(properties, list) or not all(isinstance(p, str) for p in properties):
        raise Refused(400, "Invalid input JSON: properties must be a list of property names")


def run(object_type: str, query: dict[str, Any]) -> dict[str, Any]:
    _well_formed(query)
    groups = query.get("filterGroups") or []
    # Since 2024-08: at most 5 groups, 10 filters a group, 25 in all.
    if len(groups) > 5 or any(len(g.get("filters") or []) > 10 for g in groups) \
            or sum(len(g.get("filters") or []) for g in groups) > 25:
        raise Refused(400, "Too many filters: at most 5 filterGroups, 10 filters each, 25 in all")
    try:
        limit, after = int(query.get("limit") or 10), int(query.get("after") or 0)
    except (TypeError, ValueError):
        raise Refused(400, "limit and after must be integers") from None
    if not 1 <= limit <= 200:
        raise Refused(400, "limit must be between 1 and 200")
    if after >= MAX_RESULTS:
        raise Refused(400, f"The maximum number of results for a search is {MAX_RESULTS}")
    tests = [[rule_test(f) for f in g.get("filters") or []] for g in groups]
    found = [o for o in hubspot()[object_type].values() if not o["archived"]
             and (not tests or any(all(test(o["properties"]) for test in group) for group in tests))]
    found.sort(key=lambda o: int(o["id"]))
    for sort in reversed(query.get("sorts") or []):
        # The OpenAPI document types a sort as a string (a property name, "-name" taken as descending, guessed);
        # HubSpot's guides show {"propertyName", "direction"}: both are accepted.
        if isinstance(sort, str):
            name, descending = sort.lstrip("-"), sort.startswith("-")
        else:
            name, descending = sort.get("propertyName", ""), sort.get("direction") == "DESCENDING"
        found.sort(key=lambda o: (_key(name, o["properties"].get(name)) is None,
                                  str(_key(name, o["properties"].get(name))).zfill(20)), reverse=descending)
    page = found[after:after + limit]
    answer: dict[str, Any] = {"total": len(found),
                              "results": [render(o, object_type, query.get("properties")) for o in page]}
    if after + limit < min(len(found), MAX_RESULTS):
        answer["paging"] = {"next": {"after": str(after + limit)}}
    return answer
