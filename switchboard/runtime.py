"""How the parts run: all in one process (the embedded default), or apart under gunicorn on a PaaS."""
from __future__ import annotations

import gc
import importlib
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console
from werkzeug.serving import make_server

from core import embedded, jobs, settings, store

log = logging.getLogger(__name__)

# The modules that register jobs with core.jobs; a worker and a clock import them before they start.
JOB_MODULES = ("flows.tasks",)
WORKER_CONNECTIONS = 1000  # requests in flight per gunicorn worker (gevent's greenlets; gunicorn's default, stated)
KEEPALIVE = 2  # seconds a connection waits for its next request (gunicorn's default, stated: the bench reports it)


def gunicorn_settings(workers: int) -> dict[str, Any]:
    """The server settings `switchboard serve` runs with, which the ingest benchmark's baseline runs with too."""
    # A webhook waits for the inbox's group commit (core/ingest.py). In a gevent worker the wait is a switch
    # between greenlets; in a gthread worker it was a thread's sleep, wake-up and fight for the interpreter lock,
    # which cost more than the rest of the request (docs/decisions.md, "The web process serves with gevent").
    return {"workers": workers, "worker_class": "gevent", "worker_connections": WORKER_CONNECTIONS,
            "keepalive": KEEPALIVE}


def describe_gunicorn(workers: int) -> str:
    s = gunicorn_settings(workers)
    return (f"{s['workers']} {s['worker_class']} workers x {s['worker_connections']} connections, keep-alive "
            f"{s['keepalive']} s, no access log")


def load_jobs() -> None:
    for module in JOB_MODULES:
        importlib.import_module(module)


def settle() -> None:
    """Move everything start-up made (settings, clients, models, the app) out of the garbage collector's sight: it
    lives as long as the process, and a full collection walking it paused requests for tens of milliseconds."""
    gc.collect()
    gc.freeze()


def serve_gunicorn(host: str, port: int, workers: int, app_factory: Callable[[], Any] | None = None) -> None:
    """The production web server. `app_factory` (default: webhooks.app.create_app) lets the benchmark serve a
    baseline app under the very same server configuration."""
    from gunicorn.app.base import BaseApplication
    from gunicorn.glogging import Logger

    from webhooks.app import create_app

    class RootLogger(Logger):
        """gunicorn's own messages through the handler core.logs installed: JSON off a terminal, and masked."""

        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                log.handlers[:] = []
                log.propagate = True

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            for name, value in gunicorn_settings(workers).items():
                self.cfg.set(name, value)
            self.cfg.set("accesslog", None)  # access logs would carry survey tokens and query strings
            self.cfg.set("logger_class", RootLogger)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25: every web process on a host
                self.cfg.set("control_socket_disable", True)   # would share ~/.gunicorn/gunicorn.ctl

        def load(self) -> Any:
            app = (app_factory or create_app)()
            settle()
            return app

    Server().run()


def run_embedded(host: str, port: int, sandbox_port: int, smtp_port: int, console: Console) -> None:
    # Environment and YAML checked before anything starts; never another run's sandbox: this one starts its own.
    loaded = settings.load(attach=False)
    service_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    env = loaded.env.serving_at(service_url)  # survey links follow --port unless PUBLIC_BASE_URL is set
    sandbox = None
    if env.sandboxed:
        from sandbox.server import start as start_sandbox
        sandbox = start_sandbox("127.0.0.1", sandbox_port, smtp_port, webhook_url=service_url)
        # Not settings.load() again: the sandbox's default credentials would look like half-set real ones.
        env = env.with_sandbox(sandbox.base_url, smtp_port=smtp_port)
    loaded = settings.Settings(env=env, config=loaded.config, sandbox_url=sandbox.base_url if sandbox else None)
    settings.use(loaded)
    store.upgrade()
    load_jobs()

    from webhooks.app import create_app
    server = make_server(host, port, create_app(loaded), threaded=True)
    settle()
    consumer = jobs.consumer(workers=2)
    consumer.start()
    stop = threading.Event()
    clock = threading.Thread(target=jobs.run_clock, args=(stop,), name="clock", daemon=True)
    clock.start()
    jobs.start_recovery(stop)

    def _shutdown(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    console.print(f"[bold green]Switchboard[/bold green] listening on http://{host}:{port}  "
                  f"(database {store.engine().url.render_as_string(hide_password=True)}, queue "
                  f"{type(jobs.huey).__name__})")
    if sandbox:
        console.print(f"sandbox: {sandbox.base_url} (console at {sandbox.base_url}/), SMTP sink on "
                      f"127.0.0.1:{smtp_port}; credentials: {sandbox.credentials_note}")
    if sandbox:  # ops commands from a second shell find this sandbox here (core/embedded.py)
        embedded.record(settings.data_dir(), service_url, sandbox.base_url, smtp_port)
    console.print("Ctrl-C stops.")
    try:
        server.serve_forever()  # werkzeug's returns quietly on the KeyboardInterrupt our handler raises
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping...")
        embedded.forget(settings.data_dir())
        stop.set()
        server.server_close()
        consumer.stop(graceful=True)
        if sandbox:
            sandbox.stop()
        console.print("stopped.")
