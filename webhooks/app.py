"""The Flask app factory. Every blueprint registers here, so adding a source is one line."""
from __future__ import annotations

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

import flows.tasks  # noqa: F401 - every job registered: the receiver queues them by name
from core import settings as settings_module
from core.settings import Settings

from . import admin, forms, health, home, openapi, privacy, receiver, staff, survey
from . import complaints as complaints_admin
from .events import Invalid, http_error


def create_app(settings: Settings | None = None) -> Flask:
    if settings is not None:
        settings_module.use(settings)
    loaded = settings_module.get()
    app = Flask(__name__)
    app.config["SECRET_KEY"] = loaded.env.secret("secret_key") or None
    # Largest body any source may send: attachments plus a margin for the form fields.
    app.config["MAX_CONTENT_LENGTH"] = loaded.config.attachments_max_bytes + 1024 * 1024
    # The webhooks are answered in front of Flask (webhooks/receiver.py), which also reads a PaaS router's
    # X-Forwarded-* where they matter. Flask's documented way to wrap its WSGI app, which its types declare as a method.
    app.wsgi_app = receiver.Receiver(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"])  # type: ignore[method-assign]
    for blueprint in (home.bp, health.bp, admin.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(survey.bp)  # the customer's survey page (HTML)
    app.register_blueprint(forms.bp)  # the hosted forms at /forms/<name> (HTML, embeddable)
    app.register_blueprint(complaints_admin.bp)  # the complaint register page (HTML, staff only)
    app.register_blueprint(privacy.bp)  # consent withdrawal (staff only)
    app.register_blueprint(openapi.bp)  # GET /openapi.json: this service described

    health.register_outages(app)  # a database or queue outage: 503 with Retry-After, not a 500
    staff.init_app(app, loaded)  # the staff console at /staff/ with its sign-in (docs/staff.md)

    @app.errorhandler(HTTPException)
    def _json_error(exc: HTTPException) -> ResponseReturnValue:
        return jsonify(http_error(exc)), exc.code or 500

    @app.errorhandler(Invalid)
    def _invalid(exc: Invalid) -> ResponseReturnValue:
        # A view's unusable input (the receivers answer theirs themselves).
        return jsonify(exc.body()), exc.status

    return app
