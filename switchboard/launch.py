"""The `switchboard` console script. `switchboard serve` runs gunicorn's gevent workers (switchboard/runtime.py),
and gevent must patch the standard library (socket, ssl, threading, time) before anything imports it: gunicorn's
worker patches only after the CLI, the settings and the HTTP clients are loaded, and an ssl or threading imported
before the patch stays the blocking kind. So the command is read here first, and the patch comes before the CLI
module and everything it imports."""
from __future__ import annotations

import sys


def command(argv: list[str]) -> str | None:
    """The subcommand named on the command line, past the group's own options (`--log-level LEVEL`)."""
    rest = iter(argv)
    for arg in rest:
        if arg == "--log-level":
            next(rest, None)
        elif not arg.startswith("-"):
            return arg
    return None


def patch_for_gevent() -> None:
    """What a process serving with gevent workers does before any other import (the benchmark's servers too)."""
    from gevent import monkey
    monkey.patch_all()


def main() -> None:
    if command(sys.argv[1:]) == "serve":
        patch_for_gevent()
    from switchboard.cli import main as cli
    cli()
