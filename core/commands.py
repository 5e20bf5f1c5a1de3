"""What every `switchboard` command shares, wherever it lives: the console it speaks on, and settings loaded or
a one-line error with exit status 2, never a traceback."""
from __future__ import annotations

import sys
from datetime import datetime, timezone

import click
from rich.console import Console

from core import settings
from core.settings import ConfigError, NoSandbox
from core.workdays import BUDAPEST

console = Console(stderr=True, soft_wrap=True)  # no hard wraps: a log drain would split paths and key paths


def require_vendors(loaded: settings.Settings) -> None:
    """Exit 2 with one line when the vendors would be a sandbox that is not running."""
    try:
        loaded.env.require_vendors()
    except NoSandbox as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        sys.exit(2)


def load_settings(vendors: bool = False) -> settings.Settings:
    """Settings for a command, or a readable error and exit status 2. A command that talks to the vendors
    (`vendors=True`) checks first that it can, so that it leaves no half-done work behind."""
    try:
        loaded = settings.load()
        if vendors:
            require_vendors(loaded)
        settings.use(loaded)
        return loaded
    except ConfigError as exc:
        console.print(f"[red]configuration error[/red]\n{exc}", highlight=False)
    sys.exit(2)


def moment_option(value: str | None) -> datetime | None:
    """A `--since`-like option: `2026-11-20`, `2026-11-20T08:00` or with a zone; a time without a zone is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("expected an ISO date or date-time, e.g. 2026-11-20 or 2026-11-20T08:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def local_time(moment: datetime | None) -> str:
    """A moment as staff read it: Budapest time to the minute; blank for none."""
    return moment.astimezone(BUDAPEST).strftime("%Y-%m-%d %H:%M") if moment else ""
