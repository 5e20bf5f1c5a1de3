"""Liveness, readiness and metrics: no personal data in any of them. And what any endpoint answers while the
database or the queue is out: 503 with `Retry-After`, naming the dependency, never a 500 with a traceback."""
from __future__ import annotations

import logging
import sqlite3

import redis.exceptions
import sqlalchemy.exc
from flask import Blueprint, Flask, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core import ingest, jobs, store

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

RETRY_AFTER_SECONDS = 5
# What an outage of each dependency raises in a request: the server refuses or drops connections, or answers too
# late. Anything else (an IntegrityError, a bug) stays a 500.
OUTAGES: dict[str, tuple[type[Exception], ...]] = {
    "database": (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError,
                 sqlite3.OperationalError, ingest.Overloaded),
    "queue": (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError),
}


def register_outages(app: Flask) -> None:
    """Answer 503 for an outage raised anywhere in a request. Flask looks these handlers up only for an error."""
    for dependency, errors in OUTAGES.items():
        for error in errors:
            app.register_error_handler(error, lambda exc, dependency=dependency: unavailable(dependency, exc))


def unavailable(dependency: str, exc: BaseException) -> tuple[Response, int, dict[str, str]]:
    body, headers = outage(dependency, exc)
    return jsonify(body), 503, headers


def dependency_of(exc: BaseException) -> str | None:
    """The dependency whose outage `exc` is (OUTAGES), or None for any other error."""
    return next((dependency for dependency, errors in OUTAGES.items() if isinstance(exc, errors)), None)


def outage(dependency: str, exc: BaseException) -> tuple[dict[str, object], dict[str, str]]:
    """The 503's JSON body and headers, logged: Flask's handlers and the receiver in front of Flask answer alike."""
    log.warning("answered 503: the %s is unavailable (%s)", dependency, type(exc).__name__)
    return ({"error": "service unavailable", "unavailable": dependency, "fields": {}},
            {"Retry-After": str(RETRY_AFTER_SECONDS)})


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
