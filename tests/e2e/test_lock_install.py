"""A fresh machine gets exactly what CI tested: the committed lock installs into a new virtual environment on its
own (hash-checked, nothing resolved beside it), satisfies every requirement the project declares, and the
installed package imports and answers. A lock that misses a dependency, or pins one the ranges exclude, fails."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.settings import ROOT

LOCK = ROOT / "requirements.txt"


def run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=540, env=environment)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_the_lock_installs_into_a_fresh_environment_and_the_package_imports(tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    python = str(venv / "bin" / "python")
    pip = (python, "-m", "pip", "install", "-q", "--no-deps")
    run(*pip, "--require-hashes", "-r", str(LOCK), cwd=tmp_path)
    # Not editable: the import below must come from the installed copy, not from this checkout.
    run(*pip, "--no-build-isolation", str(ROOT), cwd=tmp_path)
    run(python, "-m", "pip", "check", cwd=tmp_path)  # every declared requirement (and theirs) is in the lock
    imported = run(python, "-c", "import switchboard.cli, webhooks.app, flows.tasks, sandbox.server, "
                   "connectors.hubspot; print(switchboard.cli.__file__)", cwd=tmp_path)
    assert imported.stdout.strip().startswith(str(venv)), imported.stdout
    help_text = run(str(venv / "bin" / "switchboard"), "--help", cwd=tmp_path)
    assert "serve" in help_text.stdout and "worker" in help_text.stdout


def test_every_declared_requirement_is_pinned_with_hashes():
    import tomllib

    from packaging.requirements import Requirement
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = [*project["project"]["dependencies"], *project["project"]["optional-dependencies"]["test"],
                *project["dependency-groups"]["build"]]
    pins: dict[str, str] = {}
    for block in LOCK.read_text().split("\n"):
        if "==" in block and not block.startswith((" ", "#")):
            name, version = block.split(" ")[0].split(";")[0].split("==")
            pins[name.lower().replace("_", "-")] = version
    assert "--hash=sha256:" in LOCK.read_text()
    for text in declared:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is declared but not locked (make lock)"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {requirement.specifier}"
