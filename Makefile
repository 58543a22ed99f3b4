# Order Book Microservices: the README's two commands are `make up` (start) and `make test` (test).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=

# Written by `make install`: what only needs the tools (lint, check) waits for it, never reinstalls.
INSTALLED := $(VENV)/.installed
COMPILED_RECEIVER := build/compiled-receiver
PACKAGES := shared/obm_shared services/sender/sender services/receiver/receiver \
	services/orchestrator/orchestrator services/demo_market/demo_market cli/orderbook_cli
QUICK_TESTS := -m "not e2e and not browser"

.PHONY: help install test check test-fast lint typecheck env up up-scale down images demo-data bench compiled-receiver clean

help:
	@echo "make up        start the whole system in Docker; prints the UI's address with the API token"
	@echo "make test      lint, build the images, then run every test (unit, integration, e2e, browser)"
	@echo "make check     lint, then the tests that need no containers and no browser (quick)"
	@echo "make bench     measure throughput, latency and memory (writes bench/results/latest.json)"
	@echo "make install   create $(VENV) with the services, the orderbook CLI (compiled book if cc exists), dev tools"
	@echo "make lint      ruff and mypy"
	@echo "make up-scale  the same through NATS JetStream to RECEIVERS=N receivers (default 2)"
	@echo "make down      stop the Docker stack"

$(VENV)/bin/activate:
	python3 -m venv $(VENV)

install: $(VENV)/bin/activate
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e shared -e services/sender -e services/receiver -e services/orchestrator \
		-e services/demo_market -e . -r requirements-dev.txt
	touch $(INSTALLED)
	@if command -v cc >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory compiled-receiver; \
	else \
		echo "note: no C compiler (cc): orderbook replay runs the interpreted book"; \
	fi

$(INSTALLED):
	$(MAKE) --no-print-directory install

lint: typecheck
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: | $(INSTALLED)
	$(VENV)/bin/mypy $(PACKAGES) bench scripts tests

check: lint
	$(VENV)/bin/pytest $(QUICK_TESTS) $(PYTEST_ARGS)

test: lint images
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-fast: | $(INSTALLED)
	$(VENV)/bin/pytest $(QUICK_TESTS) $(PYTEST_ARGS)

# .env holds the API token compose gives the services (made the first time; compose refuses to run without it).
env:
	@scripts/env-file.sh

images: env
	scripts/docker/build-images.sh

up: images
	@scripts/env-file.sh url
	scripts/docker/compose.sh up

RECEIVERS ?= 2

# The scale profile: the sender publishes each run to NATS JetStream, RECEIVERS receivers book their shares.
up-scale: images
	@scripts/env-file.sh url
	OBM_TRANSPORT=nats OBM_RECEIVER_PORTS=8082-8089 scripts/docker/compose.sh --profile scale up --scale receiver=$(RECEIVERS)

down:
	scripts/docker/compose.sh --profile scale down

DEMO_FILE := data/demo/demo.mbo.dbn

demo-data: | $(INSTALLED)
	mkdir -p $(dir $(DEMO_FILE))
	$(VENV)/bin/orderbook demo-data $(DEMO_FILE)

# The receiver as its image runs it: the hot path compiled with mypyc (services/receiver/setup.py), installed
# apart from the editable install. The bench puts it first on its path; the orderbook CLI does while the
# digest of the sources it was built from (taken before the build) still matches them.
compiled-receiver: | $(INSTALLED)
	rm -rf services/receiver/build $(COMPILED_RECEIVER)
	digest="$$($(PY) -m orderbook_cli.compiled_receiver digest)" \
		&& RECEIVER_COMPILE=1 $(PIP) install --quiet --no-deps --target $(COMPILED_RECEIVER) services/receiver \
		&& $(PY) -m orderbook_cli.compiled_receiver stamp "$$digest"

bench: compiled-receiver
	PYTHONPATH=$(COMPILED_RECEIVER) $(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf build bench/scratch output test-artifacts .pytest_cache .mypy_cache .ruff_cache
