"""`python -m bench [NAME ...]`: run the benchmark modules of this package and write their sections into
docs/benchmarks.md.

A module is a benchmark when it defines `run() -> str`: a Markdown section whose first line is its `## ` heading.
Each run replaces that module's section only (or appends it), stamped with the command, the machine and the date,
so one benchmark can be measured again without running the hour of the others. `make bench` runs them all.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import bench

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
TITLE = ("# Benchmarks\n\nWritten by `make bench` (`python -m bench`; `python -m bench NAME` measures one section "
         "again). Each section says when, where and with which command it was measured: compare ratios, not "
         "absolutes.\n")


def modules(only: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
    unknown = set(only) - set(names)
    if unknown:
        raise SystemExit(f"bench: no benchmark named {', '.join(sorted(unknown))} (have: {', '.join(names)})")
    return [n for n in names if not only or n in only]


def stamp(name: str) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, Python {platform.python_version()}"
    return f"_Measured {when} by `python -m bench {name}` on {machine}._"


def place(document: str, section: str) -> str:
    """The document with `section` in place of the section of the same `## ` heading, or appended."""
    heading = section.splitlines()[0]
    parts = re.split(r"(?m)^(?=## )", document)
    for i, part in enumerate(parts):
        if part.splitlines()[:1] == [heading]:
            parts[i] = section.rstrip("\n") + "\n\n"
            return "".join(parts).rstrip("\n") + "\n"
    return document.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"


def stamped(section: str, name: str) -> str:
    heading, _, body = section.partition("\n")
    if not heading.startswith("## "):
        raise SystemExit(f"bench: {name}'s section must start with a '## ' heading")
    return f"{heading}\n\n{stamp(name)}\n{body}"


def main(argv: list[str]) -> int:
    ran = 0
    for name in modules(argv):
        module = importlib.import_module(f"bench.{name}")
        if not callable(getattr(module, "run", None)):
            continue
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        section = stamped(module.run(), name)
        print(section, flush=True)
        document = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else TITLE
        if not document.startswith("# Benchmarks\n"):
            document = TITLE
        head, sep, rest = document.partition("\n## ")
        document = TITLE + ("\n## " + rest if sep else "")  # a blank line between the title and the first section
        OUTPUT.write_text(place(document, section), encoding="utf-8")
        print(f"bench: wrote {name}'s section of {OUTPUT}", file=sys.stderr)
        ran += 1
    if not ran:
        print("bench: nothing to run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
