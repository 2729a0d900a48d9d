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

# The live-truth test watches 10 min of a demo's event time and mostly waits: it runs beside
# the rest of the suite (its output follows theirs), which saves those 12 minutes. The jars
# are fetched first, so the two runs never download them at once.
LIVE_TRUTH := tests/integration/test_live_truth.py

test: lint  ## every quality gate: ruff, mypy --strict, the whole pytest suite (real Kafka included)
	$(BIN)/streamkpi kafka fetch
	@echo "test: $(LIVE_TRUTH) runs beside the rest; its report follows theirs"
	@$(BIN)/pytest -p no:cacheprovider $(LIVE_TRUTH) > $(VENV)/live-truth.log 2>&1 & live=$$!; \
	$(BIN)/pytest --ignore=$(LIVE_TRUTH); rest=$$?; \
	wait $$live; live_rc=$$?; \
	echo "---- $(LIVE_TRUTH) ----"; cat $(VENV)/live-truth.log; \
	echo "test: rest of the suite exited $$rest, live truth $$live_rc"; \
	test $$rest -eq 0 && test $$live_rc -eq 0

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
