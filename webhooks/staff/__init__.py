"""The staff console at `/staff/` (docs/staff.md): personal sign-in with OpenID Connect, roles from the YAML, and
server-rendered pages in Hungarian and English. `init_app` is the app factory's one line."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import Response, g, render_template, session
from werkzeug.exceptions import HTTPException

from core import settings
from core.workdays import BUDAPEST

from . import complaints, pages, people, requests  # noqa: F401  - their routes join the blueprint
from .auth import PERMISSIONS, bp, init_app
from .i18n import language, message, translate

__all__ = ["init_app"]


@bp.context_processor
def _page_context() -> dict[str, Any]:
    staff = g.get("staff")
    return {"t": translate, "lang": language(), "staff": staff, "csrf": session.get("csrf", ""),
            "may": (lambda permission: bool(staff and staff.may(permission))), "message": message,
            "permissions": PERMISSIONS, "category_label": _category_label}


def _category_label(key: str | None) -> str:
    spec = settings.get().config.categories.get(key or "")
    return (spec.label.get(language()) or key or "") if spec else (key or "—")


@bp.app_template_filter("staff_time")
def _staff_time(moment: datetime | str | None) -> str:
    """Budapest time, to the minute: what staff read their tickets' deadlines in."""
    if not moment:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(BUDAPEST).strftime("%Y-%m-%d %H:%M")


@bp.app_template_filter("staff_detail")
def _staff_detail(detail: Any) -> str:
    """An audit entry's detail or a receipt's counts on one line (ids, counts and hashes only)."""
    if not detail:
        return ""
    return json.dumps(detail, ensure_ascii=False, separators=(", ", ": "), default=str)


@bp.after_request
def _no_store(response: Response) -> Response:
    # Pages of personal data: no copies in shared caches, nothing indexed, not framed by another site.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.errorhandler(HTTPException)
def _error_page(exc: HTTPException) -> Any:
    return render_template("staff/error.html", code=exc.code, description=exc.description), exc.code or 500
