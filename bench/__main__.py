"""`python -m bench`: run every benchmark module in this package and write their sections to docs/benchmarks.md.

A module is a benchmark when it defines `run() -> str` (a Markdown section). `python -m bench ingest` runs one and
prints its section without writing the file.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import bench

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def modules(only: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
    return [n for n in names if not only or n in only]


def main(argv: list[str]) -> int:
    sections = []
    for name in modules(argv):
        module = importlib.import_module(f"bench.{name}")
        if not callable(getattr(module, "run", None)):
            continue
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        sections.append(module.run())
        print(sections[-1], flush=True)
    if not sections:
        print("bench: nothing to run", file=sys.stderr)
        return 1
    if argv:  # a part of the benchmarks: printed only, so that the file keeps every section of one whole run
        print(f"bench: {OUTPUT.name} not written (`make bench` runs them all and writes it)", file=sys.stderr)
        return 0
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    OUTPUT.write_text(f"# Benchmarks\n\nWritten by `make bench` (`python -m bench`) on {stamp}. Numbers are from "
                      "one run on the development machine: compare ratios, not absolutes.\n\n"
                      + "\n\n".join(sections) + "\n", encoding="utf-8")
    print(f"bench: wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
