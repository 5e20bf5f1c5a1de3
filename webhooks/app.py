"""The Flask app factory. Every blueprint registers here, so adding a source is one line."""
from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from core import settings as settings_module
from core.settings import Settings

from . import health


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings_module.use(settings) if settings else settings_module.get()
    app = Flask(__name__)
    app.config["SECRET_KEY"] = settings.env.secret("secret_key") or None
    # Largest body any source may send: attachments plus a margin for the form fields.
    app.config["MAX_CONTENT_LENGTH"] = settings.config.attachments_max_bytes + 1024 * 1024
    app.register_blueprint(health.bp)

    @app.errorhandler(HTTPException)
    def _json_error(exc: HTTPException):  # clients of a webhook API expect JSON, not an HTML error page
        return jsonify(error=exc.name, description=exc.description), exc.code

    return app
