"""`switchboard sandbox`: the fakes alone, for a trial, a demo, or tests run from another process."""
from __future__ import annotations

import threading

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8900, show_default=True)
@click.option("--smtp-port", type=int, default=8925, show_default=True)
@click.option("--webhook-url", default=None, help="Send the vendors' webhooks for API changes to URL/webhooks/<service>.")
def sandbox(host: str, port: int, smtp_port: int, webhook_url: str | None) -> None:
    """Run the loopback fakes of HubSpot, HappyFox, Aircall and Gmail, and an SMTP sink."""
    from .server import start
    running = start(host, port, smtp_port, webhook_url)
    click.echo(f"sandbox on {running.base_url} (base URL of every fake), SMTP sink on {host}:{running.smtp_port}")
    click.echo(f"credentials: {running.credentials_note}")
    click.echo(f"services: {', '.join(running.sandbox.vendors) or 'none'}; console at {running.base_url}/")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        running.stop()
