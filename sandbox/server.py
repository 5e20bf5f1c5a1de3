"""The sandbox server: every fake on one port (their real paths do not collide), the `/_sandbox/` control API,
the console page, and the SMTP sink beside it.

Each request to a fake passes, in order: a pending fault for its path, the vendor's rate limit, the vendor's
authentication; then the fake's own handler. Every request is logged for `GET /_sandbox/calls`.
"""
from __future__ import annotations

import importlib
import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from core.settings import Env, load_env

from . import control, google, oidc
from .state import Sandbox, credentials, current
from .vendor import Refused, Vendor

log = logging.getLogger(__name__)

VENDOR_MODULES = ("sandbox.hubspot", "sandbox.happyfox", "sandbox.aircall", "sandbox.gmail")


def load_vendors() -> dict[str, Vendor]:
    vendors = {}
    for name in VENDOR_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a fake not written yet; the others still serve
            if exc.name != name:
                raise
            continue
        vendors[module.VENDOR.name] = module.VENDOR
    return vendors


def service_of(path: str, vendors: dict[str, Vendor]) -> str | None:
    # Longest prefix first: /gmail/v1/ must not be taken for Aircall's /v1/.
    matches = [(len(p), v.name) for v in vendors.values() for p in v.prefixes if path.startswith(p)]
    return max(matches)[1] if matches else None


def _drop_connection() -> Response:
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    return Response(status=500)  # never reaches the client: the connection is gone


def create_app(env: Env | None = None, webhook_url: str | None = None) -> Flask:
    env = env or load_env()
    vendors = load_vendors()
    sandbox = Sandbox(vendors=vendors, credentials=credentials(env), webhook_url=webhook_url)
    sandbox.reset()
    app = Flask(__name__)
    app.extensions["sandbox"] = sandbox
    for vendor in vendors.values():
        app.register_blueprint(vendor.blueprint)
    app.register_blueprint(control.bp)
    app.register_blueprint(oidc.bp)  # the fake Google sign-in of the staff console
    app.extensions["oidc"] = oidc.provider_for(env)
    app.register_blueprint(google.bp)  # the service-account token endpoint, live once a key is given (start)

    @app.errorhandler(Refused)
    def _refused(exc: Refused) -> Response:
        if exc.body is not None:
            response = jsonify(exc.body)
            response.status_code = exc.status
            return response
        vendor = next(v for v in vendors.values() if v.blueprint.name == request.blueprint)
        return vendor.error(exc.status, exc.message)

    @app.errorhandler(HTTPException)
    def _routing(exc: HTTPException) -> Any:
        """An unknown path or a wrong method under a vendor's prefix is answered in that vendor's error shape, as
        the API does, not with Flask's HTML page; elsewhere (the console, `/_sandbox/`) Flask's own answer."""
        service = service_of(request.path, vendors)
        if service is None or exc.code is None or exc.code >= 500:
            return exc
        message = {404: f"Unable to find a route for {request.method} {request.path}",
                   405: f"HTTP method {request.method} is not supported by {request.path}"}.get(
                       exc.code, exc.description or exc.name)
        response = vendors[service].error(exc.code, message)
        if exc.code == 405:
            response.headers["Allow"] = dict(exc.get_headers()).get("Allow", "")
        return response

    @app.before_request
    def _gate() -> Response | None:
        g.started = time.time()
        service = service_of(request.path, vendors)
        g.service = service
        if service is None:
            return None
        sandbox.begin()  # ended in _settle, whatever the answer (a fault, a dropped connection)
        vendor = vendors[service]
        fault = sandbox.take_fault(service, request.method, request.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                return _drop_connection()
            if fault.status == 429:
                return vendor.rate_limited(fault.retry_after or 1)
            if fault.status:
                response = vendor.error(fault.status, "injected fault")
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = str(int(fault.retry_after))
                return response
        wait = sandbox.over_limit(service)
        if wait is not None:
            return vendor.rate_limited(wait)
        return vendor.authenticate(request, sandbox.credentials)

    @app.teardown_request
    def _settle(_: BaseException | None) -> None:
        if g.get("service") is not None:
            sandbox.end()

    @app.after_request
    def _log_call(response: Response) -> Response:
        service = g.get("service")
        if service is not None:
            with sandbox.lock:
                started = g.get("started", time.time())
                # `seconds`: the fake's own work on the request, which a benchmark tells apart from the client's
                sandbox.calls.append({"service": service, "method": request.method, "path": request.path,
                                      "query": request.query_string.decode(), "status": response.status_code,
                                      "time": started, "seconds": round(time.time() - started, 6)})
        return response

    return app




@dataclass
class Running:
    app: Flask
    base_url: str
    smtp_port: int | None
    _server: Any
    _thread: threading.Thread
    _smtp: Any

    @property
    def sandbox(self) -> Sandbox:
        sandbox: Sandbox = self.app.extensions["sandbox"]
        return sandbox

    @property
    def credentials_note(self) -> str:
        creds = self.sandbox.credentials
        account = self.app.extensions.get("google")
        gmail = (f"Gmail as {creds['gmail_user']} with the service-account key {account.path} (GOOGLE_APPLICATION_"
                 f"CREDENTIALS; token_uri {account.token_uri})" if account else f"Gmail bearer {creds['gmail_token']}")
        return (f"HubSpot token {creds['hubspot_access_token']}, HappyFox {creds['happyfox_api_key']}:"
                f"{creds['happyfox_auth_code']}, Aircall {creds['aircall_api_id']}:{creds['aircall_api_token']}, "
                f"{gmail}")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._smtp is not None:
            self._smtp.stop()


def start(host: str = "127.0.0.1", port: int = 8900, smtp_port: int | None = 8925,
          webhook_url: str | None = None, env: Env | None = None, google_key: Path | None = None,
          google_token_seconds: int = google.DEFAULT_TOKEN_SECONDS) -> Running:
    """Start the sandbox in background threads (port 0 picks a free port) and return once it listens.
    `google_key`: Gmail takes only the bearers that `POST /token` issues for the service account of that key file,
    written first (token_uri: this sandbox's `/token`) when there is none (sandbox/google.py)."""
    app = create_app(env, webhook_url)
    server = make_server(host, port, app, threaded=True)
    if google_key is not None:  # after the bind, so that a new key file names the port really taken
        account = google.load_account(Path(google_key), f"http://{host}:{server.server_port}{google.TOKEN_PATH}",
                                      google_token_seconds)
        app.extensions["google"] = account
        app.extensions["sandbox"].on_reset.append(account.reset)
    thread = threading.Thread(target=server.serve_forever, name="sandbox-http", daemon=True)
    thread.start()
    smtp = None
    if smtp_port is not None:
        from .smtp import start_sink
        smtp = start_sink(app.extensions["sandbox"], host, smtp_port)
        smtp_port = smtp.port
    return Running(app, f"http://{host}:{server.server_port}", smtp_port, server, thread, smtp)
