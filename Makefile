# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv, install the project and fetch the Kafka jars (cached in .cache/).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DRIFTLINE_CACHE_DIR ?= $(CURDIR)/.cache
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck unit integration fault-skip kafka-jars prometheus-tools clean help

help:
	@echo "make demo   - start a local Kafka broker and run the demo"
	@echo "make test   - ruff, mypy and the whole pytest suite (unit, integration, fault)"
	@echo "make unit   - unit tests only (no broker)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

kafka-jars: $(STAMP)
	$(BIN)/driftline broker fetch

# promtool and prometheus (Debian package `prometheus`) for tests/deploy; without them those
# tests skip with the reason. Installed only where we are root with apt-get.
prometheus-tools:
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
	      || echo "could not install prometheus: its tests will be skipped"; \
	  else echo "promtool/prometheus missing: their tests will be skipped"; fi; \
	fi

demo: $(STAMP) kafka-jars
	$(BIN)/driftline demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck kafka-jars prometheus-tools
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest -m 'not integration and not fault' $(PYTEST_ARGS)

fault-skip: $(STAMP) kafka-jars
	$(BIN)/pytest -m 'not fault' $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
