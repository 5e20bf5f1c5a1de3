"""Benchmarks, run by `make bench` (`python -m bench`); each module's `run()` returns its section of
docs/benchmarks.md."""
