"""`switchboard sandbox`: the fakes alone, for a trial, a demo, or tests run from another process."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8900, show_default=True)
@click.option("--smtp-port", type=int, default=8925, show_default=True)
@click.option("--webhook-url", default=None, help="Send the vendors' webhooks for API changes to URL/webhooks/<service>.")
@click.option("--google-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Fake Google's token endpoint for the service account of this key file (written first when "
                   "missing); Gmail then takes only its tokens. Give the service GOOGLE_APPLICATION_CREDENTIALS=FILE.")
@click.option("--google-token-seconds", type=click.IntRange(1, 3600), default=3600, show_default=True,
              help="Lifetime of the tokens /token issues.")
def sandbox(host: str, port: int, smtp_port: int, webhook_url: str | None, google_key: Path | None,
            google_token_seconds: int) -> None:
    """Run the loopback fakes of HubSpot, HappyFox, Aircall and Gmail, and an SMTP sink."""
    from .server import start
    try:
        running = start(host, port, smtp_port, webhook_url, google_key=google_key,
                        google_token_seconds=google_token_seconds)
    except ValueError as exc:  # a --google-key file that is not a service account's
        click.echo(f"sandbox not started: {exc}", err=True)
        sys.exit(2)
    click.echo(f"sandbox on {running.base_url} (base URL of every fake), SMTP sink on {host}:{running.smtp_port}")
    click.echo(f"credentials: {running.credentials_note}")
    click.echo(f"services: {', '.join(running.sandbox.vendors) or 'none'}; console at {running.base_url}/")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        running.stop()
