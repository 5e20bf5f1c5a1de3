"""`GET /`: what a person who opens the service's address sees: what this is, whether it works, where to go."""
from __future__ import annotations

from flask import Blueprint, render_template

from core import settings

from . import health

bp = Blueprint("home", __name__)


@bp.get("/")
def home() -> str:
    loaded = settings.get()
    return render_template("home/index.html", problems=health.problems(), sandbox_url=loaded.sandbox_url,
                           vendors=not loaded.env.sandboxed and not loaded.sandbox_url)
