"""`GET /openapi.json`: the OpenAPI 3 description of the service's own endpoints (webhooks/openapi.yaml, written by
hand and kept true by tests/fuzz/test_openapi.py, which compares it with the Flask routes and fuzzes it)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify

bp = Blueprint("openapi", __name__)
DOCUMENT = Path(__file__).with_name("openapi.yaml")


@functools.lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())
