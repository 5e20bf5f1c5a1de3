"""The console script patches for gevent only for `switchboard serve`, and finds the command past the group's own
option (switchboard/launch.py)."""
import subprocess
import sys

import pytest

from switchboard.launch import command


@pytest.mark.parametrize(("argv", "expected"), [
    (["serve", "--port", "8000"], "serve"),
    (["--log-level", "DEBUG", "serve"], "serve"),
    (["--log-level=DEBUG", "worker"], "worker"),
    (["--help"], None),
    ([], None),
    (["sandbox", "serve"], "sandbox"),  # a later word is an argument, not the command
])
def test_the_command_is_the_first_word_past_the_group_options(argv, expected):
    assert command(argv) == expected


def patched_after(*argv: str) -> list[str]:
    """Run the console script's main() in a new interpreter (click exits after --help); what gevent patched."""
    probe = ("import sys, contextlib, warnings, gevent.monkey as m\n"
             "warnings.simplefilter('error', m.MonkeyPatchWarning)  # patched after ssl was imported: fails\n"
             "from switchboard.launch import main\n"
             "with contextlib.suppress(SystemExit): main()\n"
             "print(m.is_module_patched('threading'), m.is_module_patched('ssl'), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True)
    return done.stderr.split()[-2:]


def test_serve_patches_before_the_cli_is_imported_and_other_commands_do_not():
    assert patched_after("serve", "--help") == ["True", "True"]
    assert patched_after("worker", "--help") == ["False", "False"]
