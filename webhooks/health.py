"""Liveness, readiness and metrics: no personal data in any of them."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core import jobs, store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


def problems() -> dict[str, str]:
    """What keeps the service from working, by dependency; empty when ready."""
    found = {}
    for name, check in (("database", store.ping), ("queue", jobs.ping)):
        try:
            check()
        except Exception as exc:  # any failure means not ready; the class name is enough to act on
            found[name] = f"unreachable ({type(exc).__name__})"
    return found


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """503 with the reason while the database or the queue cannot be reached; the process itself stays up."""
    if found := problems():
        return jsonify(status="unavailable", problems=found), 503
    return jsonify(status="ready"), 200


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
