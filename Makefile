# The two commands of the README: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run dev test bench chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## run: install, create the SQLite database under instance/ and serve on http://$(HOST):$(PORT) with waitress
run: $(VENV)/.installed
	$(BIN)/flask --app wsgi init-db
	$(BIN)/python -m webapp.serving --host $(HOST) --port $(PORT) --threads 8

## dev: Flask's development server with the reloader
dev: $(VENV)/.installed
	$(BIN)/flask --app wsgi init-db
	$(BIN)/flask --app wsgi run --debug --host $(HOST) --port $(PORT)

## chromium: the browser tests drive Debian's chromium; install it when missing and we are root
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: install Debian's chromium package (the browser tests need it)" >&2; exit 1; fi; }

## test: every test, browser tests included
test: $(VENV)/.test-installed chromium
	$(BIN)/python -m pytest

$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@

## bench: benchmarks (not tests); numbers are quoted in the README
bench: $(VENV)/.bench-installed
	$(BIN)/python bench/fanout.py

clean:
	rm -rf $(VENV) .pytest_cache
