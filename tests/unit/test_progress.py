"""`core.progress.bars`: bars on an interactive terminal, ticked or crossed when the work ends; nothing at all on
anything else; log lines printed above the bars instead of through them."""
from __future__ import annotations

import io
import logging
import sys

from rich.console import Console

from core import progress


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, force_interactive=True, width=100, color_system=None), out


def test_finished_bars_are_ticked_and_short_ones_crossed():
    console, out = terminal()
    with progress.bars(console) as on_step:
        on_step("read hubspot", 0, 1)
        on_step("read hubspot", 1, 1)
        on_step("read gmail", 0, 1)
        for n in range(1, 4):
            on_step("HappyFox tickets", n, None)  # paged: no total until the end
    last = out.getvalue().rsplit("\x1b[2K", 3)[-3:]  # the final frame: one line per bar
    screen = "".join(last)
    assert "✓ read hubspot " in screen and " 1/1 " in screen
    assert "✗ read gmail: not done " in screen and " 0/1 " in screen
    assert "✓ HappyFox tickets " in screen and " 3/3 " in screen


def test_nothing_is_drawn_when_the_console_is_not_a_terminal():
    out = io.StringIO()
    with progress.bars(Console(file=out)) as on_step:
        on_step("erase hubspot", 0, 1)
        on_step("erase hubspot", 1, 1)
    assert out.getvalue() == ""


def test_flows_default_to_a_silent_step():
    assert progress.quiet("anything", 1, 2) is None


def test_log_lines_go_above_the_bars_and_the_handler_is_given_back():
    console, out = terminal()
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root.addHandler(handler)
    try:
        with progress.bars(console) as on_step:
            on_step("erase happyfox", 0, 1)
            logging.getLogger("connectors.policy").warning("happyfox call failed (Unavailable), retry 1 in 0.7s")
            on_step("erase happyfox", 1, 1)
        assert handler.stream is sys.stderr  # not the live display's redirect any more
    finally:
        root.removeHandler(handler)
    assert "WARNING happyfox call failed (Unavailable), retry 1 in 0.7s" in out.getvalue()
