"""The `switchboard` command, in the composition root. Commands that live beside the code they run (flows,
sandbox, core's audit) are named here and imported only when they run, so that `switchboard --help` stays fast."""
from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from typing import Any

import click

from core import logs
from core.commands import console, load_settings
from core.settings import ConfigError, NoSandbox


class LazyGroup(click.Group):
    """A click group whose subcommands named `name -> "module:attribute"` load on first use (click's recipe)."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attribute = self.lazy[name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        """A configuration problem met halfway through a command (a vendor needed, no sandbox running) is the
        operator's to fix: said in words, exit status 2, never a traceback."""
        try:
            return super().invoke(ctx)
        except NoSandbox as exc:
            console.print(f"[red]{exc}[/red]", highlight=False)
        except ConfigError as exc:
            console.print(f"[red]configuration error[/red]\n{exc}", highlight=False)
        except Exception as exc:
            from sqlalchemy.exc import OperationalError, ProgrammingError
            if not isinstance(exc, (OperationalError, ProgrammingError)):
                raise
            console.print(f"[red]{_database_problem(exc)}[/red]", highlight=False)
        sys.exit(2)


def _database_problem(exc: Exception) -> str:
    """One line for a database an operator must mend: never created, or not reachable (password hidden)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from core import store
    url = store.engine().url.render_as_string(hide_password=True)
    try:
        created = inspect(store.engine()).has_table("alembic_version")
    except SQLAlchemyError:
        created = True  # not reachable at all: the driver's own words below say why
    if not created:
        return f"the database {url} has no tables yet: `make run` creates them, or run `switchboard db upgrade`"
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return f"database error at {url}: {reason}"


# Ops commands that live beside the code they run. Each entry is one line; README.md#what-runs-where lists them.
LAZY_COMMANDS = {
    "sandbox": "sandbox.cli:sandbox",
    "inbox": "flows.inbox_cli:inbox",
    "ticket": "flows.intake.cli:ticket",
    "erase": "flows.privacy.cli:erase",
    "erasure": "flows.privacy.cli:erasure",
    "export": "flows.privacy.cli:export",
    "retention": "flows.privacy.cli:retention",
    "requests": "flows.privacy.cli:requests",
    "sync": "flows.closure.cli:sync",
    "sla": "flows.intake.cli:sla",
    "complaints": "flows.complaints.cli:complaints",
    "report": "flows.complaints.cli:report",  # a group: other reports add subcommands there
    "audit": "core.audit_cli:audit",
    "alerts": "flows.alerts_cli:alerts",
}


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default=lambda: os.environ.get("LOG_LEVEL", "INFO"), show_default="INFO")
def main(log_level: str) -> None:
    """Switchboard keeps the contact form, Aircall, HappyFox, HubSpot and the support mailbox consistent."""
    logs.configure(log_level.upper())


# ---------------------------------------------------------------- config and database

@main.group()
def config() -> None:
    """Configuration."""


@config.command("check")
def config_check() -> None:
    """Validate the environment and the YAML file; exit 2 with the key path of every problem."""
    loaded = load_settings()
    if loaded.sandbox_url:
        mode = f"the sandbox of the running `switchboard run` at {loaded.sandbox_url}"
    elif loaded.env.sandboxed:
        mode = "sandbox (no vendor credentials set; no `switchboard run` is running)"
    else:
        mode = "real vendors"
    console.print(f"[green]ok[/green] {loaded.env.switchboard_config}: {len(loaded.config.forms)} forms, "
                  f"{len(loaded.config.categories)} categories, {len(loaded.config.statuses)} statuses; {mode}")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations (the `release` process on a PaaS)."""
    from sqlalchemy.exc import OperationalError

    from core import store
    load_settings()
    try:
        store.upgrade(revision=revision)
    except OperationalError as exc:  # an operator's problem, not a bug: say which database, hide its password
        url = store.engine().url.render_as_string(hide_password=True)
        console.print(f"[red]database unreachable[/red] {url}: {str(exc.orig).strip().splitlines()[0]}",
                      highlight=False)
        sys.exit(1)
    console.print(f"[green]database at {revision}[/green]")


# ---------------------------------------------------------------- processes

def _port(port: int | None, default: int) -> int:
    return port or int(os.environ.get("PORT", default))


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, default=None, help="Default: $PORT, else 8000.")
@click.option("--workers", type=int, default=None, help="Default: $WEB_CONCURRENCY, else 2.")
def serve(host: str, port: int | None, workers: int | None) -> None:
    """The web process under gunicorn (Procfile `web`)."""
    from switchboard import runtime
    load_settings()
    runtime.serve_gunicorn(host, _port(port, 8000), workers or int(os.environ.get("WEB_CONCURRENCY", 2)))


@main.command()
@click.option("--workers", type=int, default=2, show_default=True, help="Worker threads.")
def worker(workers: int) -> None:
    """Run queued jobs (Procfile `worker`); any number of these may run."""
    from core import jobs
    from switchboard import runtime
    load_settings()
    runtime.load_jobs()
    consumer = jobs.consumer(workers)
    jobs.start_recovery(threading.Event())  # a daemon: it ends with the consumer's process
    consumer.run()


@main.command()
def clock() -> None:
    """Enqueue periodic jobs once per tick (Procfile `clock`, exactly one)."""
    from core import jobs
    from switchboard import runtime
    load_settings()
    runtime.load_jobs()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        jobs.run_clock(stop)
    except KeyboardInterrupt:
        stop.set()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: $PORT, else 8000.")
@click.option("--sandbox-port", type=int, default=8900, show_default=True)
@click.option("--smtp-port", type=int, default=8925, show_default=True)
def run(host: str, port: int | None, sandbox_port: int, smtp_port: int) -> None:
    """The embedded default: web, worker and clock in one process on SQLite, plus the sandbox when no vendor
    credentials are set."""
    from switchboard import runtime
    try:
        runtime.run_embedded(host, _port(port, 8000), sandbox_port, smtp_port, console)
    except ConfigError as exc:
        console.print(f"[red]configuration error[/red]\n{exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
