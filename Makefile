# The two commands of the README: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
# Links in notifications ("Open alert") point where `make run` serves, unless HERALD_BASE_URL says otherwise
BASE_URL := $(or $(HERALD_BASE_URL),http://$(HOST):$(PORT))

.PHONY: run dev test bench chromium monitoring dist build-dist clean

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
# (herald serve: waitress with the proxy and body-size settings of webapp/serving.py, and the delivery worker)
run: $(VENV)/.installed
	$(BIN)/flask --app wsgi init-db
	HERALD_BASE_URL='$(BASE_URL)' $(BIN)/herald serve --host $(HOST) --port $(PORT) --threads 8

## dev: Flask's development server with the reloader
dev: $(VENV)/.installed
	$(BIN)/flask --app wsgi init-db
	HERALD_BASE_URL='$(BASE_URL)' $(BIN)/flask --app wsgi run --debug --host $(HOST) --port $(PORT)

## chromium: the browser tests drive Debian's chromium; install it when missing and we are root
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: install Debian's chromium package (the browser tests need it)" >&2; exit 1; fi; }

## monitoring: tests/sources/ run the real Alertmanager (with amtool) and Prometheus; install Debian's packages when
# missing and we are root. No recommends: the packages alone, without node-exporter and its daemon.
MONITORING_BINARIES := prometheus-alertmanager amtool prometheus
monitoring:
	@missing=; for binary in $(MONITORING_BINARIES); do command -v $$binary >/dev/null 2>&1 || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus-alertmanager prometheus; \
	  else echo "prometheus-alertmanager or prometheus is missing: install Debian's packages of those names" \
	    "(tests/sources/ run them; without them those tests are skipped)" >&2; fi; fi

## test: every test, browser tests included
test: $(VENV)/.test-installed chromium monitoring
	$(BIN)/python -m pytest

$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@

## bench: benchmarks (not tests); numbers are quoted in the README
bench: $(VENV)/.bench-installed
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/lists.py
	$(BIN)/python bench/sources.py

$(VENV)/.dist-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dist]'
	touch $@

DIST ?= dist
## dist: $(DIST)/herald-*.whl, and $(DIST)/herald.pyz: the wheel with every dependency (PostgreSQL's driver too), one file
dist: $(VENV)/.dist-installed
	$(MAKE) --no-print-directory build-dist

# The recipe alone, for a Python that already has pip and shiv (tests/test_packaging.py runs it with its own BIN)
build-dist:
	rm -rf $(DIST)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir $(DIST) .
	$(BIN)/python -m shiv --quiet --console-script herald --output-file $(DIST)/herald.pyz --python '/usr/bin/env python3' \
	  --reproducible --compressed --compile-pyc "$$(ls $(DIST)/herald-*.whl)[postgresql]"

clean:
	rm -rf $(VENV) .pytest_cache build $(DIST)
