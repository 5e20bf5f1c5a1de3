# The two set-up commands are `make run` and `make test`; everything else is a step of theirs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast services browser system-deps bench sandbox clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
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

test: install services browser system-deps
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not browser" $(PYTEST_ARGS)

bench: install services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache
