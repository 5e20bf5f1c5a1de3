# The two set-up commands are `make run` and `make test`; everything else is a step of theirs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The whole dependency tree, pinned with hashes: every install (make run, make test, CI) gets exactly this.
LOCK   := requirements.txt
# The resolver that writes the lock (make lock); installs need only pip.
UV_VERSION := 0.13.8
LATEST := .venv-latest

.PHONY: install run test lint test-fast test-latest chaos lock upgrade services browser system-deps bench sandbox clean

install: $(STAMP)

# A new lock (or pyproject) rebuilds the environment from nothing, so it holds the lock and nothing else.
$(STAMP): $(LOCK) pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

run: install
	$(BIN)/switchboard run

sandbox: install
	$(BIN)/switchboard sandbox

# PostgreSQL and Redis are started (or waited for) by the project itself; CI=true makes a missing one fatal.
services:
	scripts/services.sh

browser:
	scripts/browser.sh

system-deps: install
	scripts/system-deps.sh

# Lint first: a type error or an import against the layers fails in seconds, before any service starts.
test: install lint services browser system-deps
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# The chaos suite at full scale: real processes killed, PostgreSQL and Redis cut, a 20 % vendor fault storm over
# 2,000 forms (`make test` runs the same tests with a 200-form storm). CI runs both.
chaos: install services
	CHAOS_STORM_EVENTS=2000 $(BIN)/python -m pytest -m chaos tests/chaos $(PYTEST_ARGS)

# Types checked (mypy, strict) and imports in line with the layers, without cycles (import-linter); both read
# pyproject.toml.
lint: install
	$(BIN)/lint-imports
	$(BIN)/mypy

test-fast: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not browser" $(PYTEST_ARGS)

# `make lock` brings the lock in line with pyproject.toml, keeping every pin it can; `make upgrade` moves every pin
# to the newest version the ranges allow. Both are deliberate: then `make test`, then commit the lock.
lock:
	test -x .venv-tools/bin/uv || { $(PYTHON) -m venv .venv-tools && .venv-tools/bin/pip install -q uv==$(UV_VERSION); }
	.venv-tools/bin/uv pip compile pyproject.toml --extra test --group pyproject.toml:build --universal \
	  --python-version 3.11 --generate-hashes --custom-compile-command "make lock" $(UPGRADE) -o $(LOCK)

upgrade:
	$(MAKE) lock UPGRADE=--upgrade

# Drift finder, not part of `make test`: the newest versions the ranges allow, in an environment of their own.
test-latest: services browser
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install -q --upgrade --upgrade-strategy eager -e '.[test]'
	$(LATEST)/bin/python -m pip freeze --exclude-editable > $(LATEST)/versions.txt
	PYTHON=$(LATEST)/bin/python scripts/system-deps.sh
	$(LATEST)/bin/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

bench: install services
	scripts/bench-deps.sh
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(LATEST) .venv-tools var .pytest_cache
