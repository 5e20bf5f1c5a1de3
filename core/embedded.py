"""The running embedded default's address book. `switchboard run` starts its sandbox on ports only it knows; it
writes them here (`<data dir>/embedded.json`), so that an ops command from a second shell reaches the same fakes
and the same SMTP sink with no flag. No secret is written: both processes derive the sandbox's credentials from
the same environment (`Env.with_sandbox`)."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

FILE = "embedded.json"


@dataclass(frozen=True)
class Embedded:
    pid: int
    service_url: str
    sandbox_url: str
    smtp_port: int


def record(directory: Path, service_url: str, sandbox_url: str, smtp_port: int) -> Path:
    """Write this process's record atomically (a reader never sees half a file); its path."""
    path = directory / FILE
    entry = Embedded(os.getpid(), service_url, sandbox_url, smtp_port)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".embedded-")
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(entry), out)
    os.replace(temporary, path)
    return path


def forget(directory: Path) -> None:
    """Remove the record at a clean stop, unless another run has written its own since."""
    found = _read(directory / FILE)
    if found is not None and found.pid == os.getpid():
        (directory / FILE).unlink(missing_ok=True)


def running(directory: Path) -> Embedded | None:
    """The record of a run that is still alive; None when there is none, or its process is gone (killed)."""
    found = _read(directory / FILE)
    if found is None or found.pid == os.getpid():
        return None
    try:
        os.kill(found.pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, but another user's
        pass
    return found


def _read(path: Path) -> Embedded | None:
    try:
        return Embedded(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):  # missing, half-written by hand, or of another shape
        return None
