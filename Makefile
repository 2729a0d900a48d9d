# The README's commands. Everything installs into ./.venv; the Kafka jars go to
# ~/.cache/streamkpi (override with STREAMKPI_KAFKA_CACHE).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: help install demo run test lint format unit integration bench generate clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with streamkpi and its dev tools

demo: install  ## see it work: Kafka, worker, live traffic, Prometheus, a live KPI table (Ctrl-C stops all)
	$(BIN)/streamkpi demo

run: install  ## only a local Kafka broker plus a worker, for your own producers (Ctrl-C stops both)
	$(BIN)/streamkpi run

test: lint  ## every quality gate: ruff, mypy --strict, the whole pytest suite (real Kafka included)
	$(BIN)/pytest

lint: install  ## ruff check, ruff format --check, mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict streamkpi

format: install  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unit: install  ## only the tests that need no broker
	$(BIN)/pytest tests/unit

integration: install  ## only the tests against a real local Kafka broker
	$(BIN)/pytest tests/integration

bench: install  ## parse throughput per topic (prints events/s)
	$(BIN)/python benchmarks/parse_bench.py

generate: install  ## regenerate the committed rules, alerts, dashboards and Kubernetes rule manifest
	$(BIN)/streamkpi rules generate
	$(BIN)/streamkpi dashboards generate

clean:  ## remove the venv, caches and the local broker's data
	rm -rf $(VENV) .streamkpi .mypy_cache .ruff_cache .pytest_cache
